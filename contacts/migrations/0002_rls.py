from django.db import migrations

from crm.db_security import tenant_rls


class Migration(migrations.Migration):
    dependencies = [("contacts", "0001_initial"), ("crm", "0002_app_role")]

    operations = [
        tenant_rls("contacts_contact"),
        tenant_rls("contacts_opportunity"),
        tenant_rls("contacts_smartlistview"),
    ]
