from django.db import migrations

from crm.db_security import tenant_rls


class Migration(migrations.Migration):
    dependencies = [("orgs", "0001_initial"), ("crm", "0002_app_role")]

    # A caller reads their own memberships in every org (GET /me, resolving X-Org-Id).
    operations = [
        tenant_rls("orgs_membership", own_rows_by_user=True)
    ]
