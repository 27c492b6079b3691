"""A larger ANALYZE sample for each custom field's value statistics, so rare values estimate steadily.

With the default target (100: a 30,000-row sample), a value held by 84 of a million contacts
shows up 2 or 3 times in the sample, and its estimate swung between ANALYZEs from 4,341 to over
5,000 rows, across contacts.paging.SMALL_RESULT, the line between a bitmap scan (4 ms) and a
walk of the created_at index (485 ms), both measured by `make bench`. At 1,000 (300,000 rows)
it shows up about 25 times. The sample is per table, so ANALYZE of contacts reads more rows.
"""

from django.conf import settings
from django.db import migrations

ROLE = settings.RLS_APP_ROLE
STATISTICS_TARGET = 1000

FUNCTION = f"""
CREATE OR REPLACE FUNCTION crm_custom_field_index(p_org bigint, p_field bigint, p_key text, p_kind text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
    index_name text := format('contact_cf_%s_%s', p_org, p_field);
    stats_name text;
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
    stats_name := 'contact_cfstat_' || left(md5(p_kind || ':' || p_key), 24);
    EXECUTE format('CREATE STATISTICS IF NOT EXISTS %I ON (%s) FROM contacts_contact', stats_name, expression);
    EXECUTE format('ALTER STATISTICS %I SET STATISTICS {STATISTICS_TARGET}', stats_name);
END
$$;
REVOKE ALL ON FUNCTION crm_custom_field_index(bigint, bigint, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_custom_field_index(bigint, bigint, text, text) TO {ROLE};

DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT stxname FROM pg_statistic_ext WHERE stxname LIKE 'contact\\_cfstat\\_%' LOOP
        EXECUTE format('ALTER STATISTICS %I SET STATISTICS {STATISTICS_TARGET}', name);
    END LOOP;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("contacts", "0005_custom_field_statistics")]

    operations = [migrations.RunSQL(FUNCTION, reverse_sql=migrations.RunSQL.noop)]
