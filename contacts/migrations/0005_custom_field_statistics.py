"""Statistics on each custom field's typed value, so the planner estimates custom filters well.

PostgreSQL ignores the statistics of partial indexes when it estimates a condition (they
cover one org only), so the per-org expression indexes of 0004 left range filters with a
default one-third estimate: a rare range then walked the created_at index through the whole
org (1.3 s measured at a million contacts). An extended-statistics object on the same
expression (PostgreSQL 14+) fixes the estimate. One object per (type, key), shared by every
org that has such a field.
"""

from django.conf import settings
from django.db import migrations

ROLE = settings.RLS_APP_ROLE

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
    EXECUTE format('CREATE STATISTICS IF NOT EXISTS %I ON (%s) FROM contacts_contact',
                   'contact_cfstat_' || left(md5(p_kind || ':' || p_key), 24), expression);
END
$$;
REVOKE ALL ON FUNCTION crm_custom_field_index(bigint, bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_custom_field_index(bigint, bigint, text, text) TO {ROLE};
"""


class Migration(migrations.Migration):
    dependencies = [("contacts", "0004_custom_field_indexes")]

    operations = [migrations.RunSQL(FUNCTION, reverse_sql=migrations.RunSQL.noop)]
