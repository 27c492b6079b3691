"""A chunk's write: its staged rows (`stage`) merged into the org's tables set-based.

Imports of one org run one at a time: a run takes a per-org transaction advisory lock before
it reads anything (`lock_org`). A chunk's final rows are COPYed into a temp staging table and
merged with one `INSERT … SELECT` and one `UPDATE … FROM staging`; a single-contact create
(which does not take the import lock) that raced us is merged into with `INSERT … ON CONFLICT
(org_id, email_key)`. The rows' tags and custom values are COPYed the same way and added with
`INSERT … ON CONFLICT DO NOTHING` (tags) and a DELETE + INSERT of the keys given (values). A
unique violation that is left (only a concurrent single-contact write can cause one) is a
`Conflict`: nothing of the import is written.
"""

from __future__ import annotations

import psycopg
from django.db import connection
from psycopg.types.json import Jsonb

from contacts.contact_fields import TEXT_FIELDS
from contacts.importing.columns import (
    COLUMNS,
    ORG_PARAM,
    STAGING,
    TAG_COLUMNS,
    TAG_STAGING,
    TAG_TYPES,
    VALUE_COLUMNS,
    VALUE_STAGING,
    VALUE_TYPES,
    WRITE_COLUMNS,
    WRITE_TYPES,
)
from contacts.importing.lookup import Existing, Lookup
from contacts.importing.stage import Staged
from contacts.journal import Journal
from contacts.models import Contact, ContactTag, FieldValue
from contacts.normalize import build_folded, build_search_text
from crm.errors import Conflict

CONFLICT_DETAIL = (
    "A concurrent change to this organization's contacts collided with the import; nothing was imported. "
    "Retry the import."
)
# First key of pg_advisory_xact_lock(int, int); the second is the org id.
IMPORT_LOCK_CLASS = 0x1C0A


def lock_org(org_id: int) -> None:
    """The org's import lock, held until the transaction ends."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [IMPORT_LOCK_CLASS, org_id % 2**31])


class ChunkWriter:
    """Writes one run's staged chunks into an org's contacts, tags and custom values."""

    def __init__(
        self, org_id: int, on_duplicate: str, scope_user: int | None, lookup: Lookup, journal: Journal | None = None
    ):
        self.org_id = org_id
        self.journal = journal  # an async import's record for undo (contacts.journal)
        self.on_duplicate = on_duplicate
        self.scope_user = scope_user  # an assigned-only member's user (see plan.Planner)
        self.lookup = lookup
        self._raced_written: set[str] = set()
        self._inserted = self._inserted_at_replan = 0  # contacts this run inserted (_replan_as_the_table_grows)

    def write(self, raw: psycopg.Connection, staged: Staged) -> tuple[Staged, dict[int, str]]:
        """Write one chunk: most of an import's database time (index upkeep).

        Runs on the writer thread with the request's psycopg connection itself (Django's wrapper
        is per thread), while the caller plans and normalizes the next chunks and issues no
        query. New contacts are inserted from the staging table with a plain INSERT (row-level
        security rules out COPY into the table itself); if a concurrent single create took one
        of their emails, they go through `INSERT … ON CONFLICT` instead, which merges into it.
        Then the tags (added) and custom values (replaced per key) of the chunk. Returns the
        planned ids that such a create made wrong, with their emails (see `engine`'s `_repoint`).
        """
        table = Contact._meta.db_table
        raced: dict[int, str] = {}
        try:
            with raw.cursor() as cursor:
                if staged.creating:
                    create_staging(cursor, STAGING, WRITE_COLUMNS, WRITE_TYPES, staged.creating)
                    cursor.execute("SAVEPOINT contact_import_insert")
                    try:
                        cursor.execute(self._insert_sql(table, merging=False))
                        cursor.execute("RELEASE SAVEPOINT contact_import_insert")
                    except psycopg.errors.UniqueViolation:
                        cursor.execute("ROLLBACK TO SAVEPOINT contact_import_insert")
                        raced = self._insert_merging(cursor)
                    if self.journal is not None:
                        self.journal.record_created(cursor, STAGING)
                    cursor.execute(f"DROP TABLE {STAGING}")
                    self._replan_as_the_table_grows(cursor, len(staged.new))
                if staged.updating:
                    create_staging(cursor, STAGING, WRITE_COLUMNS, WRITE_TYPES, staged.updating)
                    if self.journal is not None:
                        self.journal.record_before(cursor, STAGING)
                    cursor.execute(self.update_sql(table), [self.org_id])
                    updated = cursor.rowcount
                    cursor.execute(f"DROP TABLE {STAGING}")
                    if updated != staged.updates:  # a contact to update is gone: never drop rows silently
                        raise psycopg.errors.IntegrityError(f"{updated} of {staged.updates} contacts updated")
                self._write_tags_and_values(cursor, staged, raced)
        except psycopg.errors.IntegrityError:  # raw psycopg: Django does not wrap the writer's errors
            # Only a concurrent single-contact write can get here (imports of an org are serialized).
            raise Conflict(CONFLICT_DETAIL, code="import_conflict")
        return staged, raced

    def _replan_as_the_table_grows(self, cursor, inserted: int) -> None:
        """The contacts table grew, in a transaction no ANALYZE sees. The foreign-key checks of the
        tag and value rows run plans the session cached when the table was smaller: made on an
        empty table (a new database), they read the whole org per check (100,000 rows: minutes
        instead of seconds). So the cached plans are dropped each time the run has doubled what it
        inserted: a handful of times a run."""
        self._inserted += inserted
        if self._inserted >= 2 * self._inserted_at_replan:
            cursor.execute("DISCARD PLANS")
            self._inserted_at_replan = self._inserted

    def _write_tags_and_values(self, cursor, staged: Staged, raced: dict[int, str]) -> None:
        """The chunk's tags and custom values. For raced rows (see `_insert_merging`) the contact is the
        one that took the email, or none (skipped): a temp table maps planned ids to it."""
        org = int(self.org_id)
        target_id, created_at, mapped = "s.contact_id", "s.created_at", ""
        if raced:
            emails = sorted(set(raced.values()))
            cursor.execute(f"SELECT email_key, id, created_at FROM {Contact._meta.db_table} "
                           f"WHERE org_id = {ORG_PARAM} AND email_key = ANY(%s)", [org, emails])  # fmt: skip
            taken = {email: (contact_id, created) for email, contact_id, created in cursor.fetchall()}
            written = self._raced_written
            cursor.execute(
                "CREATE TEMP TABLE contact_import_ids (planned int8 PRIMARY KEY, actual int8, created_at timestamptz)"
                " ON COMMIT DROP"
            )
            cursor.executemany(
                "INSERT INTO contact_import_ids VALUES (%s, %s, %s)",
                [
                    (planned, *(taken.get(email, (None, None)) if email in written else (None, None)))
                    for planned, email in raced.items()
                ],
            )
            target_id, created_at = "COALESCE(m.actual, s.contact_id)", "COALESCE(m.created_at, s.created_at)"
            mapped = (
                " LEFT JOIN contact_import_ids m ON m.planned = s.contact_id"
                " WHERE m.planned IS NULL OR m.actual IS NOT NULL"
            )
        if staged.tags:
            create_staging(cursor, TAG_STAGING, TAG_COLUMNS, TAG_TYPES, staged.tags)
            cursor.execute(
                f"INSERT INTO {ContactTag._meta.db_table} (org_id, contact_id, tag_id, created_at) "
                f"SELECT {org}, {target_id}, s.tag_id, {created_at} FROM {TAG_STAGING} s{mapped} ON CONFLICT DO NOTHING"
            )
            cursor.execute(f"DROP TABLE {TAG_STAGING}")
        value_table, columns = FieldValue._meta.db_table, ", ".join(VALUE_COLUMNS[1:])
        selected = ", ".join(created_at if c == "created_at" else f"s.{c}" for c in VALUE_COLUMNS[1:])
        for data, replacing in ((staged.new_values, bool(raced)), (staged.updated_values, True)):
            if not data:
                continue
            create_staging(cursor, VALUE_STAGING, VALUE_COLUMNS, VALUE_TYPES, data)
            if replacing:  # the keys given replace what the contact had
                cursor.execute(
                    f"DELETE FROM {value_table} f USING (SELECT DISTINCT {target_id} AS contact_id, s.field_id "
                    f"FROM {VALUE_STAGING} s{mapped}) k WHERE f.org_id = {org} AND f.contact_id = k.contact_id "
                    "AND f.field_id = k.field_id"
                )
            cursor.execute(
                f"INSERT INTO {value_table} (org_id, contact_id, {columns}) "
                f"SELECT {org}, {target_id}, {selected} FROM {VALUE_STAGING} s{mapped}"
            )
            cursor.execute(f"DROP TABLE {VALUE_STAGING}")
        if raced:
            cursor.execute("DROP TABLE contact_import_ids")

    def _insert_merging(self, cursor) -> dict[int, str]:
        """The staged new contacts through `INSERT … ON CONFLICT`; the planned ids it did not use,
        with their email keys. `_raced_written`: the email keys of raced rows that merged (not skipped)."""
        cursor.execute(self._insert_sql(Contact._meta.db_table, merging=True))
        written = dict(cursor.fetchall())
        cursor.execute(f"SELECT id, email_key FROM {STAGING}")
        raced = {contact_id: email for contact_id, email in cursor.fetchall() if contact_id not in written}
        self._raced_written = set(written.values())
        return raced

    def read_back(self, emails: list[str]) -> list[Existing]:
        """The contacts holding these emails, read `FOR UPDATE` on the request thread, with their
        derived columns computed again from the merged row (they are folded in Python) and written."""
        with connection.connection.cursor() as cursor:
            read = self.lookup.read_contacts(cursor, "email_key = ANY(%s::text[])", [emails], lock=True)
            for contact in read:
                contact.folded = build_folded(vars(contact))
                contact.search_text = build_search_text(contact.name, contact.email, contact.phone, contact.company)
            cursor.executemany(
                f"UPDATE {Contact._meta.db_table} SET folded = %s, search_text = %s WHERE id = %s",
                [(Jsonb(c.folded), c.search_text, c.id) for c in read],
            )
        return read

    def _insert_sql(self, table: str, merging: bool) -> str:
        columns = ", ".join(WRITE_COLUMNS)
        insert = f"INSERT INTO {table} AS c ({columns}) SELECT {columns} FROM {STAGING} ORDER BY id"
        if not merging:
            return insert  # the usual case: a conflict is a unique violation, and then merging runs
        insert += " ON CONFLICT (org_id, email_key) "
        returning = " RETURNING c.id, c.email_key"
        if self.on_duplicate == "skip":
            return insert + "DO NOTHING" + returning
        # A single-contact create raced this import: fill the given fields, as an update would
        # (folded and search_text are computed again in Python by `read_back`).
        fill = {spec.column: f"COALESCE(NULLIF(EXCLUDED.{spec.column}, ''), c.{spec.column})" for spec in TEXT_FIELDS}
        sets = [f"{c} = {expr}" for c, expr in fill.items()] + [
            "phone = COALESCE(EXCLUDED.phone, c.phone)",
            "dnc = c.dnc OR EXCLUDED.dnc",
            "assigned_to_id = COALESCE(c.assigned_to_id, EXCLUDED.assigned_to_id)",
            "updated_at = EXCLUDED.updated_at",
        ]
        where = ""
        if self.scope_user is not None:
            where = f" WHERE c.assigned_to_id = {int(self.scope_user)}"
        return insert + "DO UPDATE SET " + ", ".join(sets) + where + returning

    @staticmethod
    def update_sql(table: str) -> str:
        sets = ", ".join(f"{c} = s.{c}" for c in (*COLUMNS, "updated_at"))
        return f"UPDATE {table} AS c SET {sets} FROM {STAGING} AS s WHERE c.id = s.id AND c.org_id = {ORG_PARAM}"


def create_staging(cursor, table: str, columns: tuple[str, ...], types: tuple[str, ...], data: bytes) -> None:
    """A temp table of `columns`, filled with the COPY `data`."""
    definition = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
    cursor.execute(f"CREATE TEMP TABLE {table} ({definition}) ON COMMIT DROP")
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(data)
