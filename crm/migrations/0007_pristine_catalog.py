"""Put PostgreSQL's built-in catalog back as shipped where earlier versions changed it (DESIGN §2).

Migrations 0004 and 0006 used to mark built-in functions LEAKPROOF when run by a superuser. Only a
superuser may undo that too: run by one, this resets them; run by anyone else on a database where
they are still marked, it warns (a DBA should run the same statements; nothing here needs them).
"""

from django.db import migrations

FUNCTIONS = [
    "arraycontains(anyarray, anyarray)",
    "arrayoverlap(anyarray, anyarray)",
    "jsonb_contains(jsonb, jsonb)",
    "textlike(text, text)",
    "texticlike(text, text)",
    "lower(text)",
]

SQL = """
DO $$
DECLARE
    changed text := (
        SELECT string_agg(p.oid::regprocedure::text, ', ')
        FROM pg_proc p
        WHERE p.oid = ANY (ARRAY[{oids}]::regprocedure[]) AND p.proleakproof
    );
BEGIN
    IF changed IS NULL THEN
        RETURN;
    ELSIF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        {statements}
    ELSE
        RAISE WARNING 'These built-in functions are still marked LEAKPROOF by an earlier version; '
            'a superuser should run ALTER FUNCTION ... NOT LEAKPROOF on: %', changed;
    END IF;
END
$$;
""".format(
    oids=", ".join(f"'{f}'" for f in FUNCTIONS),
    statements="\n        ".join(f"ALTER FUNCTION {f} NOT LEAKPROOF;" for f in FUNCTIONS),
)


class Migration(migrations.Migration):
    dependencies = [("crm", "0006_leakproof_lower")]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
