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
# (and context) only inserts; later ones fold into the entries it made (`history.written` says
# which came first), so no unique index is kept up on every insert for the rare second statement.
RECORD = """
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    src text := coalesce(nullif(current_setting('history.source', true), ''), 'system');
    actor bigint := nullif(current_setting('history.user_id', true), '')::bigint;
    tok text := nullif(current_setting('history.token', true), '');
    job bigint := nullif(current_setting('history.job_id', true), '')::bigint;
    ctx_unit bigint := coalesce(nullif(current_setting('history.unit', true), '')::bigint, 0);
    tx bigint := pg_current_xact_id()::text::bigint;
    emptied bigint[];
BEGIN
    IF current_setting('history.written', true) IS DISTINCT FROM tx || ':' || ctx_unit THEN
        INSERT INTO history_contactchange (org_id, contact_id, at, event, source, job_id, user_id, token, txid, unit, changes)
        SELECT e.org_id, e.contact_id, now(), e.event, src, job, actor, tok, tx, ctx_unit, e.changes
        FROM ({entries}) e;
        IF FOUND THEN
            PERFORM set_config('history.written', tx || ':' || ctx_unit, true);
        END IF;
        RETURN NULL;
    END IF;
    WITH entries AS ({entries}),
    folded AS (
        UPDATE history_contactchange h SET
            changes = history_merge_changes(h.changes, e.changes),
            event = CASE WHEN e.event = 'updated' THEN h.event ELSE e.event END,
            source = src, job_id = job, user_id = actor, token = tok
        FROM entries e
        WHERE h.org_id = e.org_id AND h.contact_id = e.contact_id AND h.txid = tx AND h.unit = ctx_unit
        RETURNING h.id, h.org_id, h.contact_id, h.event, h.changes
    ),
    added AS (
        INSERT INTO history_contactchange (org_id, contact_id, at, event, source, job_id, user_id, token, txid, unit, changes)
        SELECT e.org_id, e.contact_id, now(), e.event, src, job, actor, tok, tx, ctx_unit, e.changes
        FROM entries e
        WHERE NOT EXISTS (SELECT 1 FROM folded f WHERE f.org_id = e.org_id AND f.contact_id = e.contact_id)
    )
    SELECT array_agg(id) INTO emptied FROM folded WHERE event = 'updated' AND changes = '{{}}'::jsonb;
    IF emptied IS NOT NULL THEN  -- a later statement put back what an earlier one changed
        DELETE FROM history_contactchange WHERE id = ANY(emptied);
    END IF;
    RETURN NULL;
END
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
STILL_THERE = "EXISTS (SELECT 1 FROM contacts_contact c WHERE c.id = r.contact_id)"

# Tags: [sorted names before, sorted names after] of each contact a statement touched: after = its
# tag rows now; before = those but the statement's new ones, plus its old ones.
TAGS = """
    WITH touched AS (
        SELECT DISTINCT r.org_id, r.contact_id
        FROM (SELECT org_id, contact_id FROM {new} n UNION ALL SELECT org_id, contact_id FROM {old} o) r
        WHERE {where}
    ), items AS (
        SELECT ct.org_id, ct.contact_id, ct.tag_id, n.tag_id IS NULL AS is_before, true AS is_after
        FROM touched c
        JOIN contacts_contacttag ct ON ct.org_id = c.org_id AND ct.contact_id = c.contact_id
        LEFT JOIN {new} n ON n.org_id = ct.org_id AND n.contact_id = ct.contact_id AND n.tag_id = ct.tag_id
        UNION ALL
        SELECT o.org_id, o.contact_id, o.tag_id, true, false
        FROM {old} o JOIN touched c ON c.org_id = o.org_id AND c.contact_id = o.contact_id
    ), names AS (
        SELECT i.org_id, i.contact_id,
               coalesce(array_agg(t.name ORDER BY t.name COLLATE "C") FILTER (WHERE i.is_before), '{{}}') AS before,
               coalesce(array_agg(t.name ORDER BY t.name COLLATE "C") FILTER (WHERE i.is_after), '{{}}') AS after
        FROM items i JOIN customization_tag t ON t.org_id = i.org_id AND t.id = i.tag_id
        GROUP BY i.org_id, i.contact_id
    )
    SELECT org_id, contact_id, 'updated' AS event,
           jsonb_build_object('tags', jsonb_build_array(to_jsonb(before), to_jsonb(after))) AS changes
    FROM names WHERE before <> after
"""
NO_TAGS = "(SELECT * FROM contacts_contacttag WHERE false)"
TAGS_INSERTED = TAGS.format(new="new_rows", old=NO_TAGS, where="true")
TAGS_DELETED = TAGS.format(new=NO_TAGS, old="old_rows", where=STILL_THERE)

# Custom values: `custom.<key>`: [before, after] in canonical JSON (a multi_select: its items in
# position order). After = the rows now; before = the rows now but the statement's new ones, plus
# its old ones.
NO_ROWS = "(SELECT * FROM contacts_fieldvalue WHERE false)"
VALUES = """
    WITH touched AS (
        SELECT DISTINCT r.org_id, r.contact_id, r.field_id
        FROM (SELECT org_id, contact_id, field_id FROM {new} n
              UNION ALL SELECT org_id, contact_id, field_id FROM {old} o) r
        WHERE {where}
    ), field AS (
        SELECT t.org_id, t.contact_id, t.field_id, f.key, f.data_type = 'multi_select' AS multi
        FROM touched t JOIN customization_customfield f ON f.org_id = t.org_id AND f.id = t.field_id
    ), after_items AS (
        SELECT fv.org_id, fv.contact_id, fv.field_id, fv.position, fv.value
        FROM contacts_fieldvalue fv JOIN field f
            ON fv.org_id = f.org_id AND fv.contact_id = f.contact_id AND fv.field_id = f.field_id
    ), items AS (
        SELECT true AS is_after, a.* FROM after_items a
        UNION ALL
        SELECT false, a.* FROM after_items a WHERE NOT EXISTS (
            SELECT 1 FROM {new} n
            WHERE n.org_id = a.org_id AND n.contact_id = a.contact_id AND n.field_id = a.field_id
              AND n.position = a.position)
        UNION ALL
        SELECT false, o.org_id, o.contact_id, o.field_id, o.position, o.value
        FROM {old} o JOIN field f ON f.org_id = o.org_id AND f.contact_id = o.contact_id AND f.field_id = o.field_id
    ), field_values AS (
        SELECT f.org_id, f.contact_id, f.field_id, f.key,
            CASE WHEN f.multi THEN jsonb_agg(i.value ORDER BY i.position) FILTER (WHERE NOT i.is_after)
                 ELSE (array_agg(i.value) FILTER (WHERE NOT i.is_after))[1] END AS before,
            CASE WHEN f.multi THEN jsonb_agg(i.value ORDER BY i.position) FILTER (WHERE i.is_after)
                 ELSE (array_agg(i.value) FILTER (WHERE i.is_after))[1] END AS after
        FROM field f LEFT JOIN items i
            ON i.org_id = f.org_id AND i.contact_id = f.contact_id AND i.field_id = f.field_id
        GROUP BY f.org_id, f.contact_id, f.field_id, f.key, f.multi
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
                            ("deleted", "Deleted"),
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
