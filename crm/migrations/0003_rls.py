from django.db import migrations

from crm.db_security import tenant_rls


class Migration(migrations.Migration):
    dependencies = [("crm", "0002_app_role")]

    operations = [tenant_rls("crm_idempotencyrecord")]
