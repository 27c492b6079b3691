"""Formerly marked built-in operators LEAKPROOF (needs a superuser; DESIGN §2 forbids changing the
built-in catalog). Now does nothing; crm/0007 resets databases where it ran."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("crm", "0003_rls")]

    operations = []
