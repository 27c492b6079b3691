from django.db import migrations

from crm.db_security import tenant_rls


class Migration(migrations.Migration):
    dependencies = [("customization", "0001_initial"), ("crm", "0002_app_role")]

    operations = [
        tenant_rls("customization_tag"),
        tenant_rls("customization_customfieldfolder"),
        tenant_rls("customization_customfield"),
        tenant_rls("customization_customvalue"),
    ]
