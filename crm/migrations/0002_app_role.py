"""The application roles: own nothing, no BYPASSRLS; requests `SET LOCAL ROLE` to them."""

from django.conf import settings
from django.db import migrations

def create_role(role: str) -> str:
    return f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE {role} NOLOGIN NOBYPASSRLS;
    END IF;
    -- The owner (the migrating user) must be able to SET ROLE to it.
    EXECUTE format('GRANT {role} TO %I', current_user);
END
$$;
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {role};
"""


# The request role, and the named escape hatch for work that spans orgs (admin, bootstrap).
CREATE_ROLE = create_role(settings.RLS_APP_ROLE) + create_role(settings.RLS_BYPASS_ROLE)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0001_initial"),
        ("orgs", "0001_initial"),
        ("contacts", "0001_initial"),
        ("customization", "0001_initial"),
        ("knox", "0009_extend_authtoken_field"),
        ("sessions", "0001_initial"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [migrations.RunSQL(CREATE_ROLE, reverse_sql=migrations.RunSQL.noop)]
