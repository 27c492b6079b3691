"""The change history of contacts, captured by the database (docs/decisions.md, "Change history").

Statement-level AFTER triggers with transition tables on contacts_contact (INSERT, UPDATE,
DELETE), contacts_contacttag (INSERT, DELETE) and contacts_fieldvalue (INSERT, UPDATE, DELETE)
turn each statement into one set-based write to history_contactchange: one entry per contact per
transaction (and context, history.context); a later statement of the transaction folds into it per
key (earliest before, latest after, keys whose before = after dropped; an `updated` entry left
empty is deleted). The triggers run as the writer (no SECURITY DEFINER), so an entry passes the
same row-level security as the write that made it.
"""

import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from crm.db_security import tenant_rls

APP, BYPASS = settings.RLS_APP_ROLE, settings.RLS_BYPASS_ROLE
TABLE = "history_contactchange"

# The contact's user-facing columns (contacts/contact_fields.py WRITABLE_FIELDS; a test keeps the
# two in step): name in `changes` -> (column, SQL that is true when the value is not empty).
FIELDS = {
    "first_name": ("first_name", "{r}.first_name <> ''"),
    "last_name": ("last_name", "{r}.last_name <> ''"),
    "name": ("name", "{r}.name <> ''"),
    "email": ("email", "{r}.email <> ''"),
    "phone": ("phone", "{r}.phone <> ''"),
    "company": ("company", "{r}.company <> ''"),
    "source": ("source", "{r}.source <> ''"),
    "notes": ("notes", "{r}.notes <> ''"),
    "dnc": ("dnc", "{r}.dnc"),
    "assigned_to": ("assigned_to_id", "{r}.assigned_to_id IS NOT NULL"),
}

MERGE_CHANGES = """
CREATE FUNCTION history_merge_changes(earlier jsonb, later jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(jsonb_object_agg(key, jsonb_build_array(before, after)), '{}'::jsonb)
    FROM (
        SELECT key, coalesce(e.value -> 0, l.value -> 0) AS before, coalesce(l.value -> 1, e.value -> 1) AS after
        FROM jsonb_each(earlier) e FULL JOIN jsonb_each(later) l USING (key)
    ) merged
    WHERE before IS DISTINCT FROM after
$$;
"""

# The body of every trigger function: `entries` (org_id, contact_id, event, changes), at most one
# row per contact, written with the transaction's context. The first statement of a transaction
# (and context) only inserts, and notes in `history.written` the first id it could have written;
# a later one folds into the entries made since (found by id from there, so no unique index is
# kept up on every insert for the rare second statement).
# plan_cache_mode: each run plans its statements for the rows it has (a transition table of one row
# after a PATCH, of 5,000 after a bulk chunk) and the tables' current statistics; a plan cached by a
# long-lived session (a worker) while the tables were small could otherwise be reused for a statement
# a thousand times larger (nested loops over what became large tables).
RECORD = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    src text := coalesce(nullif(current_setting('history.source', true), ''), 'system');
    actor bigint := nullif(current_setting('history.user_id', true), '')::bigint;
    tok text := nullif(current_setting('history.token', true), '');
    job bigint := nullif(current_setting('history.job_id', true), '')::bigint;
    ctx_unit bigint := coalesce(nullif(current_setting('history.unit', true), '')::bigint, 0);
    tx bigint := pg_current_xact_id()::text::bigint;
    written text[] := string_to_array(current_setting('history.written', true), ':');
    first_id bigint;
    found_entries history_entry[];
    existing jsonb;
    emptied bigint[];
BEGIN
    IF NOT coalesce(written[1]::bigint = tx AND written[2]::bigint = ctx_unit, false) THEN
        first_id := (SELECT last_value FROM history_contactchange_id_seq);
        INSERT INTO history_contactchange (org_id, contact_id, at, event, source, job_id, user_id, token, txid, unit, changes)
        SELECT e.org_id, e.contact_id, now(), e.event, src, job, actor, tok, tx, ctx_unit, e.changes
        FROM ({entries}) e;
        IF FOUND THEN
            PERFORM set_config('history.written', concat_ws(':', tx, ctx_unit, first_id), true);
        END IF;
        RETURN NULL;
    END IF;
    SELECT array_agg(ROW(e.org_id, e.contact_id, e.event, e.changes)::history_entry) INTO found_entries
    FROM ({entries}) e;
    IF found_entries IS NULL THEN  -- e.g. an UPDATE of updated_at only
        RETURN NULL;
    END IF;
    first_id := written[3]::bigint;
    -- This transaction's entries, read once by the primary key from the first id it could have
    -- written, as a map: a look-up per entry whatever the planner thinks of the table's size
    -- (a per-entry subquery planned on an empty table's statistics walked every entry each time).
    SELECT jsonb_object_agg(h.org_id || ':' || h.contact_id, h.id) INTO existing
    FROM history_contactchange h WHERE h.id >= first_id AND h.txid = tx AND h.unit = ctx_unit;
    WITH e AS MATERIALIZED (
        SELECT u.*, (existing ->> (u.org_id || ':' || u.contact_id))::bigint AS existing_id
        FROM unnest(found_entries) u
    ), folded AS (
        UPDATE history_contactchange h SET
            changes = history_merge_changes(h.changes, e.changes),
            event = CASE WHEN e.event = 'updated' THEN h.event ELSE e.event END,
            source = src, job_id = job, user_id = actor, token = tok
        FROM e WHERE h.id = e.existing_id
        RETURNING h.id, h.event, h.changes
    ), added AS (
        INSERT INTO history_contactchange (org_id, contact_id, at, event, source, job_id, user_id, token, txid, unit, changes)
        SELECT e.org_id, e.contact_id, now(), e.event, src, job, actor, tok, tx, ctx_unit, e.changes
        FROM e WHERE e.existing_id IS NULL
    )
    SELECT array_agg(id) INTO emptied FROM folded WHERE event = 'updated' AND changes = '{{}}'::jsonb;
    IF emptied IS NOT NULL THEN  -- a later statement put back what an earlier one changed
        DELETE FROM history_contactchange WHERE id = ANY(emptied);
    END IF;
    RETURN NULL;
END
$$;
"""
ENTRY_TYPE = "CREATE TYPE history_entry AS (org_id bigint, contact_id bigint, event text, changes jsonb)"

# A custom value from its items {position: value}: a multi_select's in position order, else the one.
VALUE_OF = """
CREATE FUNCTION history_value(items jsonb, multi boolean) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN multi THEN jsonb_agg(value ORDER BY key::int) ELSE (array_agg(value ORDER BY key::int))[1] END
    FROM jsonb_each(items)
$$;
"""


def _fields_object(pair_sql: str) -> str:
    """jsonb_strip_nulls(jsonb_build_object(name, <pair or NULL>, …)): only the fields that have a pair."""
    return "jsonb_strip_nulls(jsonb_build_object({}))".format(
        ", ".join(
            f"'{name}', {pair_sql.format(column=column, present=present)}" for name, (column, present) in FIELDS.items()
        )
    )


# A new row lists its non-empty values as [null, value]; a restore is a `restored` event.
CONTACT_INSERTED = """
    SELECT n.org_id, n.id AS contact_id, CASE WHEN src = 'restore' THEN 'restored' ELSE 'created' END AS event,
           {changes} AS changes
    FROM new_rows n
""".format(
    changes=_fields_object("CASE WHEN {present} THEN jsonb_build_array(NULL, n.{column}) END").replace("{r}", "n")
)

CONTACT_UPDATED = """
    SELECT n.org_id, n.id AS contact_id, 'updated' AS event, {changes} AS changes
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE ({old}) IS DISTINCT FROM ({new})
""".format(
    changes=_fields_object(
        "CASE WHEN o.{column} IS DISTINCT FROM n.{column} THEN jsonb_build_array(o.{column}, n.{column}) END"
    ),
    old=", ".join(f"o.{column}" for column, _ in FIELDS.values()),
    new=", ".join(f"n.{column}" for column, _ in FIELDS.values()),
)

# Moved to the trash (the trash keeps its values) or merged into another contact.
CONTACT_DELETED = """
    SELECT o.org_id, o.id AS contact_id, CASE WHEN src = 'merge' THEN 'merged' ELSE 'trashed' END AS event,
           '{}'::jsonb AS changes
    FROM old_rows o
"""

# Rows of a contact that left in the same statement (its tags and values cascade after it) and
# rows of a tag or field deleted from the catalog (nothing to name them by) are not recorded.
STILL_THERE = "EXISTS (SELECT 1 FROM contacts_contact c WHERE c.id = g.contact_id)"

# The statement's rows are only appended and grouped, never joined (a transition table has no index
# and the planner's guess of its size can make a join of it a nested loop); the tables the triggers
# read are reached by their keys from the touched contacts.

# Tags: [sorted names before, sorted names after] of each contact touched: after = its tag rows now;
# before = those but the statement's new ones, plus its old ones.
TAGS = """
    WITH items AS (
        SELECT org_id, contact_id, tag_id, 0 AS kind FROM {new} n
        UNION ALL SELECT org_id, contact_id, tag_id, 1 FROM {old} o
        UNION ALL
        SELECT ct.org_id, ct.contact_id, ct.tag_id, 2
        FROM (SELECT org_id, contact_id FROM {new} n UNION SELECT org_id, contact_id FROM {old} o) t
        JOIN contacts_contacttag ct ON ct.org_id = t.org_id AND ct.contact_id = t.contact_id
    ), g AS (
        SELECT i.org_id, i.contact_id,
               coalesce(array_agg(t.name ORDER BY t.name COLLATE "C") FILTER (WHERE i.kind = 2), '{{}}') AS after,
               coalesce(array_agg(t.name) FILTER (WHERE i.kind = 0), '{{}}') AS added,
               coalesce(array_agg(t.name) FILTER (WHERE i.kind = 1), '{{}}') AS removed
        FROM items i JOIN customization_tag t ON t.org_id = i.org_id AND t.id = i.tag_id
        GROUP BY i.org_id, i.contact_id
    ), names AS (
        SELECT g.org_id, g.contact_id, g.after, ARRAY(
            SELECT x FROM (SELECT x FROM unnest(g.after) x WHERE x <> ALL(g.added) UNION ALL SELECT unnest(g.removed)) b(x)
            ORDER BY x COLLATE "C"
        ) AS before
        FROM g WHERE {where}
    )
    SELECT org_id, contact_id, 'updated' AS event,
           jsonb_build_object('tags', jsonb_build_array(to_jsonb(before), to_jsonb(after))) AS changes
    FROM names WHERE before <> after
"""
NO_TAGS = "(SELECT * FROM contacts_contacttag WHERE false)"
TAGS_INSERTED = TAGS.format(new="new_rows", old=NO_TAGS, where="true")
TAGS_DELETED = TAGS.format(new=NO_TAGS, old="old_rows", where=STILL_THERE)

# Custom values: `custom.<key>`: [before, after] in canonical JSON. Per (contact, field) touched, its
# items {position: value}: after = the rows now; before = those but the statement's new positions,
# with its old items.
NO_ROWS = "(SELECT * FROM contacts_fieldvalue WHERE false)"
VALUES = """
    WITH items AS (
        SELECT org_id, contact_id, field_id, position, value, 0 AS kind FROM {new} n
        UNION ALL SELECT org_id, contact_id, field_id, position, value, 1 FROM {old} o
        UNION ALL
        SELECT fv.org_id, fv.contact_id, fv.field_id, fv.position, fv.value, 2
        FROM (SELECT org_id, contact_id, field_id FROM {new} n UNION SELECT org_id, contact_id, field_id FROM {old} o) t
        JOIN contacts_fieldvalue fv ON fv.org_id = t.org_id AND fv.contact_id = t.contact_id AND fv.field_id = t.field_id
    ), g AS (
        SELECT org_id, contact_id, field_id,
               coalesce(jsonb_object_agg(position::text, value) FILTER (WHERE kind = 2), '{{}}') AS now_items,
               coalesce(array_agg(position::text) FILTER (WHERE kind = 0), '{{}}') AS new_positions,
               coalesce(jsonb_object_agg(position::text, value) FILTER (WHERE kind = 1), '{{}}') AS old_items
        FROM items GROUP BY org_id, contact_id, field_id
    ), field_values AS (
        SELECT g.org_id, g.contact_id, g.field_id, f.key,
               history_value((g.now_items - g.new_positions) || g.old_items, f.data_type = 'multi_select') AS before,
               history_value(g.now_items, f.data_type = 'multi_select') AS after
        FROM g JOIN customization_customfield f ON f.org_id = g.org_id AND f.id = g.field_id
        WHERE {where}
    )
    SELECT org_id, contact_id, 'updated' AS event,
           jsonb_object_agg('custom.' || key, jsonb_build_array(before, after) ORDER BY field_id) AS changes
    FROM field_values WHERE before IS DISTINCT FROM after
    GROUP BY org_id, contact_id
"""
VALUES_INSERTED = VALUES.format(new="new_rows", old=NO_ROWS, where="true")
VALUES_UPDATED = VALUES.format(new="new_rows", old="old_rows", where=STILL_THERE)
VALUES_DELETED = VALUES.format(new=NO_ROWS, old="old_rows", where=STILL_THERE)

# (table, event, transition tables, entries): one statement trigger each (a trigger with transition
# tables has one event).
TRIGGERS = [
    ("contacts_contact", "INSERT", "NEW TABLE AS new_rows", CONTACT_INSERTED),
    ("contacts_contact", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", CONTACT_UPDATED),
    ("contacts_contact", "DELETE", "OLD TABLE AS old_rows", CONTACT_DELETED),
    ("contacts_contacttag", "INSERT", "NEW TABLE AS new_rows", TAGS_INSERTED),
    ("contacts_contacttag", "DELETE", "OLD TABLE AS old_rows", TAGS_DELETED),
    ("contacts_fieldvalue", "INSERT", "NEW TABLE AS new_rows", VALUES_INSERTED),
    ("contacts_fieldvalue", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows", VALUES_UPDATED),
    ("contacts_fieldvalue", "DELETE", "OLD TABLE AS old_rows", VALUES_DELETED),
]


# A deleted org's history goes with it (instead of a foreign key checked on every entry written).
ORG_DELETED = """
CREATE FUNCTION history_org_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM history_contactchange h USING old_rows o WHERE h.org_id = o.id;
    RETURN NULL;
END
$$;
"""


def _name(table: str, event: str) -> str:
    return f"history_{table.removeprefix('contacts_')}_{event.lower()}"


CREATE = [
    ORG_DELETED,
    "CREATE TRIGGER history_org_delete AFTER DELETE ON orgs_organization REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION history_org_deleted()",
    f"GRANT SELECT, INSERT, UPDATE, DELETE ON {TABLE} TO {APP}, {BYPASS}",
    f"GRANT USAGE, SELECT ON SEQUENCE {TABLE}_id_seq TO {APP}, {BYPASS}",
    MERGE_CHANGES,
    ENTRY_TYPE,
    VALUE_OF,
    *[RECORD.format(name=_name(table, event), entries=entries) for table, event, _, entries in TRIGGERS],
    *[
        f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table} REFERENCING {transition}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {_name(table, event)}()"
        for table, event, transition, _ in TRIGGERS
    ],
]
DROP = [
    "DROP TRIGGER IF EXISTS history_org_delete ON orgs_organization",
    "DROP FUNCTION IF EXISTS history_org_deleted()",
    *[f"DROP TRIGGER IF EXISTS {_name(table, event)} ON {table}" for table, event, _, _ in TRIGGERS],
    *[f"DROP FUNCTION IF EXISTS {_name(table, event)}()" for table, event, _, _ in TRIGGERS],
    "DROP FUNCTION IF EXISTS history_merge_changes(jsonb, jsonb)",
    "DROP FUNCTION IF EXISTS history_value(jsonb, boolean)",
    "DROP TYPE IF EXISTS history_entry",
]


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contacts", "0012_trash"),
        ("orgs", "0002_rls"),
        ("crm", "0007_pristine_catalog"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContactChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("contact_id", models.BigIntegerField()),
                ("at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "event",
                    models.CharField(
                        choices=[
                            ("created", "Created"),
                            ("updated", "Updated"),
                            ("trashed", "Trashed"),
                            ("restored", "Restored"),
                            ("merged", "Merged"),
                            ("purged", "Purged"),
                        ],
                        max_length=10,
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("api", "Api"),
                            ("import", "Import"),
                            ("bulk", "Bulk"),
                            ("merge", "Merge"),
                            ("restore", "Restore"),
                            ("admin", "Admin"),
                            ("system", "System"),
                        ],
                        max_length=20,
                    ),
                ),
                ("job_id", models.BigIntegerField(null=True)),
                ("user_id", models.BigIntegerField(null=True)),
                ("token", models.TextField(null=True)),
                ("txid", models.BigIntegerField()),
                ("unit", models.BigIntegerField(default=0)),
                ("changes", models.JSONField(default=dict)),
                (
                    "org",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="orgs.organization",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["org", "contact_id", "-id"], name="contactchange_by_contact")],
            },
        ),
        tenant_rls(TABLE),
        migrations.RunSQL(sql=CREATE, reverse_sql=DROP),
    ]
