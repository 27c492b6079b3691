"""Receivers of customization.signals (tag rename/delete, field delete) that update contacts."""
