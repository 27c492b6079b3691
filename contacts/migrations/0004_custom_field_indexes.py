"""Per-field expression indexes for custom values (DESIGN §5: rare ranges and one-contact values).

A custom field's values live in `custom` (JSONB). Containment (`@>`) is served by the GIN
index, but case-insensitive text equality and number/date ranges need an index on the
expression the search compiler filters on, for that org only (a partial index).

- `crm_custom_text|number|date|datetime(custom, key)`: the typed value, NULL when absent or
  not of that type. plpgsql (never inlined) and IMMUTABLE, so they can be indexed; LEAKPROOF
  (they raise for no value the service stores) so row-level security lets the planner use
  those indexes. LEAKPROOF needs a superuser; otherwise they are created without it.
- `crm_custom_field_index(...)`: the request role owns no table, so it asks this SECURITY
  DEFINER function, which validates the key and quotes everything, to create or drop one.
"""

from django.conf import settings
from django.db import migrations

ROLE = settings.RLS_APP_ROLE

VALUE_FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION crm_custom_text(custom jsonb, key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN lower(custom ->> key);
END
$$;
CREATE OR REPLACE FUNCTION crm_custom_number(custom jsonb, key text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    IF jsonb_typeof(custom -> key) = 'number' THEN
        RETURN (custom -> key)::double precision;
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION crm_custom_date(custom jsonb, key text) RETURNS date
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE value text := custom ->> key;
BEGIN
    IF value ~ '^\d{4}-\d{2}-\d{2}$' THEN  -- ISO dates parse the same under any DateStyle
        RETURN value::date;
    END IF;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION crm_custom_datetime(custom jsonb, key text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE value text := custom ->> key;
BEGIN
    -- An explicit offset is required, so the TimeZone setting never changes the answer.
    IF value ~ '^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$' THEN
        RETURN value::timestamptz;
    END IF;
    RETURN NULL;
END
$$;
DO $$
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        ALTER FUNCTION crm_custom_text(jsonb, text) LEAKPROOF;
        ALTER FUNCTION crm_custom_number(jsonb, text) LEAKPROOF;
        ALTER FUNCTION crm_custom_date(jsonb, text) LEAKPROOF;
        ALTER FUNCTION crm_custom_datetime(jsonb, text) LEAKPROOF;
    ELSE
        RAISE WARNING 'Not a superuser: crm_custom_* functions are not LEAKPROOF; under RLS their indexes go unused';
    END IF;
END
$$;
"""

FUNCTION = f"""
CREATE OR REPLACE FUNCTION crm_custom_field_index(p_org bigint, p_field bigint, p_key text, p_kind text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    index_name text := format('contact_cf_%s_%s', p_org, p_field);
    expression text;
BEGIN
    IF p_key !~ '^[a-z][a-z0-9_]{{0,63}}$' THEN
        RAISE EXCEPTION 'invalid custom field key %', p_key;
    END IF;
    IF p_kind = 'drop' THEN
        EXECUTE format('DROP INDEX IF EXISTS %I', index_name);
        RETURN;
    ELSIF p_kind IN ('text', 'number', 'date', 'datetime') THEN  -- what contacts.search.operators filters on
        expression := format('crm_custom_%s(custom, %L::text)', p_kind, p_key);
    ELSE
        RAISE EXCEPTION 'unknown index kind %', p_kind;
    END IF;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON contacts_contact ((%s)) WHERE org_id = %s',
                   index_name, expression, p_org);
END
$$;
REVOKE ALL ON FUNCTION crm_custom_field_index(bigint, bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_custom_field_index(bigint, bigint, text, text) TO {ROLE};
"""


class Migration(migrations.Migration):
    dependencies = [("contacts", "0003_drop_redundant_org_index"), ("crm", "0002_app_role")]

    operations = [
        migrations.RunSQL(VALUE_FUNCTIONS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(
            FUNCTION, reverse_sql="DROP FUNCTION IF EXISTS crm_custom_field_index(bigint, bigint, text, text)"
        ),
    ]
