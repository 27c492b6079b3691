"""The application role: owns nothing, no BYPASSRLS; requests `SET LOCAL ROLE` to it."""

from django.conf import settings
from django.db import migrations

ROLE = settings.RLS_APP_ROLE

CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}') THEN
        CREATE ROLE {ROLE} NOLOGIN NOBYPASSRLS;
    END IF;
    -- The owner (the migrating user) must be able to SET ROLE to it.
    EXECUTE format('GRANT {ROLE} TO %I', current_user);
END
$$;
GRANT USAGE ON SCHEMA public TO {ROLE};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE};
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {ROLE};
"""


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
