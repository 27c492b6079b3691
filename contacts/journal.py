"""A job's journal: what an async import or a bulk action did to each contact, so
`POST /jobs/{id}/undo` can put it back (DESIGN §4 Import, Actions on a smart list).

An import's is recorded set-based by the chunk writer, in the chunk's transaction: the contacts a
chunk creates (`created`), and for the ones it updates their state before the import first
touched them (`before`); after each step of the job, the state it left them in (`after`). A bulk
action (contacts.bulk) records `before` and `after` of the parts it touches only (`state_sql`
with `columns`, `tags`, `fields`). A state is one JSON document per contact: built-in columns,
tag ids and custom values' stored rows by field id, read by the database itself.

Undo (contacts.undo) compares each contact's state now with `after`: a field nobody changed
since is put back; one changed since is reported and left alone. A created contact nobody
changed since (its `updated_at` is not after the job's end) is deleted; one changed since is
kept and reported.
"""

from __future__ import annotations

from contacts.importing.columns import COLUMNS
from contacts.models import Contact, ContactJournal, ContactTag, FieldValue
from jobs.models import Job

DERIVED_COLUMNS = ("email_key", "folded", "search_text")  # computed from the others
FIELD_COLUMNS = tuple(column for column in COLUMNS if column not in DERIVED_COLUMNS)
JOURNAL = ContactJournal._meta.db_table
ORG = "(SELECT %(org)s::bigint)"  # the org, hidden from the planner's per-org statistics (as columns.ORG_PARAM)


ALL = "all"  # snapshot_sql: every tag or every custom value


def snapshot_sql(alias: str, columns=FIELD_COLUMNS, tags: str | None = ALL, fields: str | None = ALL) -> str:
    """A contact's state (of the row `alias`) as one jsonb: {"fields", "tags", "values"}; by
    default all of it, or the given `columns`, only the tag ids in the SQL array `tags` and the
    values of the field ids in the SQL array `fields` (a bulk action's parts), None: none."""
    pairs = ", ".join(f"'{column}', {alias}.{column}" for column in columns)
    tag_rows, value_rows = ContactTag._meta.db_table, FieldValue._meta.db_table
    stored = "to_jsonb(fv) - 'org_id' - 'contact_id' - 'field_id'"
    tag_state, value_state = "'[]'::jsonb", "'{}'::jsonb"
    # The restriction to `tags` / `fields` is an aggregate's FILTER, which the planner cannot turn
    # into an index condition: each contact's rows are read by its key (org, contact), never through
    # the (org, tag) or (org, field) indexes a growing tag would make a walk per contact.
    if tags is not None:
        only = "" if tags == ALL else f" FILTER (WHERE t.tag_id = ANY({tags}))"
        tag_state = (
            f"COALESCE((SELECT jsonb_agg(t.tag_id ORDER BY t.tag_id){only} FROM {tag_rows} t "
            f"WHERE t.org_id = {alias}.org_id AND t.contact_id = {alias}.id), '[]'::jsonb)"
        )
    if fields is not None:
        only = "" if fields == ALL else f" FILTER (WHERE v.field_id = ANY({fields}))"
        value_state = (
            f"COALESCE((SELECT jsonb_object_agg(v.field_id, v.items){only} FROM (SELECT fv.field_id, "
            f"jsonb_agg({stored} ORDER BY fv.position) AS items FROM {value_rows} fv "
            f"WHERE fv.org_id = {alias}.org_id AND fv.contact_id = {alias}.id GROUP BY fv.field_id) v), "
            "'{}'::jsonb)"
        )
    return f"jsonb_build_object('fields', jsonb_build_object({pairs}), 'tags', {tag_state}, 'values', {value_state})"


def state_of(contact_id: str) -> str:
    """A scalar subquery: the state of the org's (`%(org)s`) contact whose id is the expression
    `contact_id`, or NULL. Correlated, with the org as a one-row subquery (`ORG`): each contact is
    found by its key, whatever the planner believes of a new org's size (with the org's own
    statistics, a new org "has one row" and was walked whole per contact through another org_id
    index: 10–30 s a step of 10,000 rows in the benchmark)."""
    return f"SELECT {snapshot_sql('c')} FROM {Contact._meta.db_table} c WHERE c.org_id = {ORG} AND c.id = {contact_id}"


class Journal:
    """The journal of one import job, written by the chunk writer (contacts.importing.write)."""

    def __init__(self, org_id: int, job_id: int):
        self.org_id = int(org_id)
        self.job_id = int(job_id)

    def record_created(self, cursor, staging: str) -> None:
        """The staged new contacts that were inserted (a raced one merged elsewhere is not ours)."""
        cursor.execute(
            f"INSERT INTO {JOURNAL} (org_id, job_id, contact_id, created, undone) "
            f"SELECT {self.org_id}, {self.job_id}, s.id, true, false FROM {staging} s "
            f"WHERE (SELECT c.id FROM {Contact._meta.db_table} c WHERE c.org_id = {ORG} AND c.id = s.id) IS NOT NULL "
            "ON CONFLICT DO NOTHING",  # a scalar subquery, found by key (see state_of)
            {"org": self.org_id},
        )

    def record_before(self, cursor, staging: str) -> None:
        """The state of the staged contacts before this chunk updates them; a contact the job
        touched before keeps its first `before` (or stays `created`)."""
        cursor.execute(
            f"INSERT INTO {JOURNAL} (org_id, job_id, contact_id, created, before, undone) "
            f"SELECT {self.org_id}, {self.job_id}, s.id, false, ({state_of('s.id')}), false FROM {staging} s "
            "ON CONFLICT DO NOTHING",
            {"org": self.org_id},
        )

    def record_after(self, cursor, contact_ids: list[int]) -> None:
        """The state the job left these contacts in (after each step: later steps may touch them
        again). Not for contacts it created: whether one changed since is its `updated_at`, later
        than the job's end (every write of a contact sets it)."""
        if not contact_ids:
            return
        cursor.execute(
            f"UPDATE {JOURNAL} j SET after = ({state_of('j.contact_id')}) "
            "WHERE j.org_id = %(org)s AND j.job_id = %(job)s AND j.contact_id = ANY(%(ids)s) AND NOT j.created",
            {"org": self.org_id, "job": self.job_id, "ids": contact_ids},
        )


def expire(kind: str):
    """The `expire` of a job kind that keeps a journal: the journals of its jobs finished before
    a moment (too old to undo) dropped."""

    def expire_journals(before) -> int:
        finished = Job.objects.filter(kind=kind, finished_at__lt=before).values("id")
        deleted, _ = ContactJournal.objects.filter(job_id__in=finished).delete()
        return deleted

    return expire_journals
