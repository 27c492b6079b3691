"""Formerly created per-field extended statistics. Now does nothing (see 0004)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("contacts", "0004_custom_field_indexes")]

    operations = []
