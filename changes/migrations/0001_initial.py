"""The change feed's tables and triggers (changes.models; docs/decisions.md, "Change feed order").

- `changes_mark_commit`: a statement trigger on every table of feed entries (the contacts' history,
  `changes_objectchange`) inserts one `changes_commit` row per (org, transaction) that wrote any.
- `changes_number_commit`: a deferred constraint trigger on that row runs as the transaction
  commits; it takes the next number of the org's sequence (an UPDATE of the org's `FeedState` row,
  whose lock is held until the commit is visible) and writes it on the commit row. Numbers are
  therefore handed out in commit order within an org, and one org's commits never wait for another's.
- `changes_record_object`: a row trigger on opportunities, tags, custom fields and saved views
  writes their changes ({column: [before, after]}) with the history's context (history.context).
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from crm.db_security import tenant_rls

APP, BYPASS = settings.RLS_APP_ROLE, settings.RLS_BYPASS_ROLE
TABLES = ["changes_commit", "changes_feedstate", "changes_objectchange"]

MARK_COMMIT = """
CREATE FUNCTION changes_mark_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO changes_commit (org_id, txid)
    SELECT DISTINCT org_id, txid FROM new_rows ORDER BY org_id
    ON CONFLICT (org_id, txid) DO NOTHING;
    RETURN NULL;
END
$$;
"""

# At commit (a deferred trigger runs after the transaction's last statement): the org's next
# number. The row lock taken by the UPDATE is held until this transaction's commit is visible, so a
# later committer of the same org gets a larger number only once this one can be read.
# SECURITY DEFINER: it runs as the tables' owner whatever role is current when the transaction
# commits (a job step has already left its org by then); the owner's own policy on these two
# bookkeeping tables (NUMBERING_POLICIES) lets it write the row of the org being committed.
NUMBER_COMMIT = """
CREATE FUNCTION changes_number_commit() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    number bigint;
BEGIN
    INSERT INTO changes_feedstate AS f (org_id, last_seq, expired_through) VALUES (NEW.org_id, 1, 0)
    ON CONFLICT (org_id) DO UPDATE SET last_seq = f.last_seq + 1
    RETURNING f.last_seq INTO number;
    UPDATE changes_commit SET seq = number, committed_at = clock_timestamp() WHERE id = NEW.id;
    RETURN NULL;
END
$$;
"""
NUMBERING_POLICIES = [
    f"CREATE POLICY feed_numbering ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
    for table in ("changes_commit", "changes_feedstate")
]

# TG_ARGV[0]: the object's name in the feed. Columns that are bookkeeping, not content, are left out.
RECORD_OBJECT = """
CREATE FUNCTION changes_record_object() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hidden text[] := ARRAY['id', 'org_id', 'created_at', 'updated_at', 'name_key'];
    before jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}'::jsonb ELSE to_jsonb(OLD) END;
    after jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}'::jsonb ELSE to_jsonb(NEW) END;
    row_data jsonb := CASE WHEN TG_OP = 'DELETE' THEN before ELSE after END;
    diff jsonb;
BEGIN
    SELECT coalesce(jsonb_object_agg(key, jsonb_build_array(b, a)), '{}'::jsonb) INTO diff
    FROM (
        SELECT key, before -> key AS b, after -> key AS a
        FROM jsonb_object_keys(before || after) AS k(key)
        WHERE key <> ALL(hidden)
    ) d
    WHERE b IS DISTINCT FROM a AND NOT (coalesce(b, 'null') = 'null' AND coalesce(a, 'null') = 'null');
    IF TG_OP = 'UPDATE' AND diff = '{}'::jsonb THEN
        RETURN NULL;
    END IF;
    INSERT INTO changes_objectchange (org_id, object, object_id, contact_id, at, event, source, job_id, user_id, token, txid, changes)
    VALUES (
        (row_data ->> 'org_id')::bigint, TG_ARGV[0], (row_data ->> 'id')::bigint, (row_data ->> 'contact_id')::bigint,
        now(), CASE TG_OP WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END,
        coalesce(nullif(current_setting('history.source', true), ''), 'system'),
        nullif(current_setting('history.job_id', true), '')::bigint,
        nullif(current_setting('history.user_id', true), '')::bigint,
        nullif(current_setting('history.token', true), ''),
        pg_current_xact_id()::text::bigint, diff
    );
    RETURN NULL;
END
$$;
"""

OBJECTS = {
    "contacts_opportunity": "opportunity",
    "customization_tag": "tag",
    "customization_customfield": "custom_field",
    "contacts_smartlistview": "view",
}
ENTRY_TABLES = ["history_contactchange", "changes_objectchange"]

# A deleted org's feed goes with it (no foreign keys checked on every entry written).
ORG_DELETED = """
CREATE FUNCTION changes_org_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM changes_objectchange c USING old_rows o WHERE c.org_id = o.id;
    DELETE FROM changes_commit c USING old_rows o WHERE c.org_id = o.id;
    DELETE FROM changes_feedstate c USING old_rows o WHERE c.org_id = o.id;
    RETURN NULL;
END
$$;
"""

CREATE = [
    *[f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP}, {BYPASS}" for table in TABLES],
    *[f"GRANT USAGE, SELECT ON SEQUENCE {table}_id_seq TO {APP}, {BYPASS}" for table in TABLES if table != "changes_feedstate"],
    MARK_COMMIT,
    NUMBER_COMMIT,
    *NUMBERING_POLICIES,
    RECORD_OBJECT,
    ORG_DELETED,
    "CREATE TRIGGER changes_org_delete AFTER DELETE ON orgs_organization REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION changes_org_deleted()",
    *[
        f"CREATE TRIGGER changes_mark_commit AFTER INSERT ON {table} REFERENCING NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION changes_mark_commit()"
        for table in ENTRY_TABLES
    ],
    "CREATE CONSTRAINT TRIGGER changes_number_commit AFTER INSERT ON changes_commit"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION changes_number_commit()",
    *[
        f"CREATE TRIGGER changes_record_object AFTER INSERT OR UPDATE OR DELETE ON {table}"
        f" FOR EACH ROW EXECUTE FUNCTION changes_record_object('{name}')"
        for table, name in OBJECTS.items()
    ],
]
DROP = [
    "DROP TRIGGER IF EXISTS changes_org_delete ON orgs_organization",
    "DROP FUNCTION IF EXISTS changes_org_deleted()",
    *[f"DROP TRIGGER IF EXISTS changes_record_object ON {table}" for table in OBJECTS],
    "DROP TRIGGER IF EXISTS changes_number_commit ON changes_commit",
    *[f"DROP TRIGGER IF EXISTS changes_mark_commit ON {table}" for table in ENTRY_TABLES],
    "DROP FUNCTION IF EXISTS changes_record_object()",
    "DROP FUNCTION IF EXISTS changes_number_commit()",
    *[f"DROP POLICY IF EXISTS feed_numbering ON {table}" for table in ("changes_commit", "changes_feedstate")],
    "DROP FUNCTION IF EXISTS changes_mark_commit()",
]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('orgs', '0002_rls'),
        ('history', '0002_feed_and_retention_indexes'),
        ('contacts', '0014_merges'),
        ('customization', '0003_folded_names'),
    ]

    operations = [
        migrations.CreateModel(
            name='FeedState',
            fields=[
                ('org', models.OneToOneField(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, primary_key=True, related_name='+', serialize=False, to='orgs.organization')),
                ('last_seq', models.BigIntegerField(default=0)),
                ('expired_through', models.BigIntegerField(default=0)),
            ],
            options={
                'abstract': False,
            },
        ),
        migrations.CreateModel(
            name='Commit',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('txid', models.BigIntegerField()),
                ('seq', models.BigIntegerField(null=True)),
                ('committed_at', models.DateTimeField(null=True)),
                ('org', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='orgs.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['org', 'seq'], name='commit_org_seq')],
                'constraints': [models.UniqueConstraint(fields=('org', 'txid'), name='commit_org_txid_uniq')],
            },
        ),
        migrations.CreateModel(
            name='ObjectChange',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('object', models.CharField(choices=[('opportunity', 'Opportunity'), ('tag', 'Tag'), ('custom_field', 'Custom Field'), ('view', 'View')], max_length=20)),
                ('object_id', models.BigIntegerField()),
                ('contact_id', models.BigIntegerField(null=True)),
                ('at', models.DateTimeField(default=django.utils.timezone.now)),
                ('event', models.CharField(choices=[('created', 'Created'), ('updated', 'Updated'), ('deleted', 'Deleted')], max_length=10)),
                ('source', models.CharField(max_length=20)),
                ('job_id', models.BigIntegerField(null=True)),
                ('user_id', models.BigIntegerField(null=True)),
                ('token', models.TextField(null=True)),
                ('txid', models.BigIntegerField()),
                ('changes', models.JSONField(default=dict)),
                ('org', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='orgs.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['org', 'txid', 'id'], name='objectchange_by_txid')],
            },
        ),
        *[tenant_rls(table) for table in TABLES],
        migrations.RunSQL(sql=CREATE, reverse_sql=DROP),
    ]
