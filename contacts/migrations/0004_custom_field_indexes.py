"""Formerly created per-org, per-field expression indexes and LEAKPROOF value functions. Now does
nothing: custom values live in FieldValue rows with a fixed set of indexes (contacts/0006, which
also drops what this created on databases where it ran)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("contacts", "0003_drop_redundant_org_index"), ("crm", "0002_app_role")]

    operations = []
