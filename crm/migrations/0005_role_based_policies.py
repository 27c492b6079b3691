"""Policies per role: a plain `org_id = <setting>` for the app role (an index condition,
evaluated once per query) and `true` for the bypass role, instead of one policy with an OR
that PostgreSQL had to evaluate on every row. Creates the bypass role on databases migrated
before it existed."""

from importlib import import_module

from django.db import migrations

from crm.db_security import tenant_rls

CREATE_ROLES = import_module("crm.migrations.0002_app_role").CREATE_ROLE
# The tenant tables as of this migration (later ones get their policies in their own migration).
TENANT_TABLES = [
    "crm_idempotencyrecord",
    "contacts_contact",
    "contacts_opportunity",
    "contacts_smartlistview",
    "customization_tag",
    "customization_customfieldfolder",
    "customization_customfield",
    "customization_customvalue",
]


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0004_leakproof_index_operators"),
        ("orgs", "0002_rls"),
        ("contacts", "0004_custom_field_indexes"),
        ("customization", "0002_rls"),
    ]

    operations = [
        migrations.RunSQL(CREATE_ROLES, reverse_sql=migrations.RunSQL.noop),
        *[tenant_rls(table) for table in TENANT_TABLES],
        tenant_rls("orgs_membership", own_rows_by_user=True),
    ]
