"""Let row-level security keep the GIN and trigram indexes usable.

Under a security policy PostgreSQL only uses an operator as an index condition when its
function is LEAKPROOF (it may run before the policy, so it must not reveal the rows it sees).
Array containment/overlap (tags), jsonb containment (custom) and LIKE/ILIKE (trigram `q`)
raise no data-dependent errors, so we mark them LEAKPROOF. That needs a superuser; without
one the migration only warns, and a DBA should run the same statements (docs/security.md).
"""

from django.db import migrations

FUNCTIONS = [
    "arraycontains(anyarray, anyarray)",
    "arrayoverlap(anyarray, anyarray)",
    "jsonb_contains(jsonb, jsonb)",
    "textlike(text, text)",
    "texticlike(text, text)",
]

SQL = """
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        {statements}
    ELSE
        RAISE WARNING 'Not a superuser: ask a DBA to mark these LEAKPROOF, or RLS disables the GIN/trigram indexes: %',
            '{names}';
    END IF;
END
$$;
""".format(
    statements="\n        ".join(f"ALTER FUNCTION {f} LEAKPROOF;" for f in FUNCTIONS),
    names=", ".join(FUNCTIONS),
)


class Migration(migrations.Migration):
    dependencies = [("crm", "0003_rls")]

    operations = [migrations.RunSQL(SQL, reverse_sql=migrations.RunSQL.noop)]
