"""Mark lower(text) LEAKPROOF, so the unique `(org_id, lower(email))` index serves lookups under RLS.

Import finds existing contacts by `lower(email) = ANY(...)` and a duplicate create names the
contact with `lower(email) = ...`. Under the policy a non-leakproof call cannot be an index
condition, so each of those scanned the whole org. lower() raises no data-dependent error.
Same superuser rule as 0004.
"""

from django.db import migrations


SQL = """
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER FUNCTION lower(text) LEAKPROOF;
    ELSE
        RAISE WARNING 'Not a superuser: ask a DBA to run ALTER FUNCTION lower(text) LEAKPROOF, '
            'or RLS disables the (org_id, lower(email)) index for lookups';
    END IF;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0005_role_based_policies")]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
