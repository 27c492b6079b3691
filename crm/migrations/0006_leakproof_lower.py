"""Formerly marked lower(text) LEAKPROOF. Now does nothing; crm/0007 resets databases where it ran."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0005_role_based_policies")]

    operations = []
