"""The import engine: normalize every row, plan creates/updates in memory, write set-based.

1. Each row goes through `ContactNormalizer.clean` (the one validation path); a bad row is
   reported and skipped.
2. Under a per-org transaction advisory lock (imports of one org run one at a time), the
   contacts matching the rows' emails/phones are read `FOR UPDATE`. Rows are then resolved in
   file order, as if imported one at a time: a row whose dedupe key matches an existing contact
   or an earlier row updates (or skips) it, otherwise it creates one. Emails stay unique per org
   whatever `dedupe_on` says; a row that would duplicate one is an error.
3. The final rows are COPYed into a temp staging table and merged with one
   `INSERT … SELECT` and one `UPDATE … FROM staging`; a single-contact create (which does not
   take the import lock) that raced us is merged into with `INSERT … ON CONFLICT (org_id,
   email_key)`. The rows' tags and custom values are COPYed the same way and added with
   `INSERT … ON CONFLICT DO NOTHING` (tags) and a DELETE + INSERT of the keys given (values).

Rows go through these steps in chunks of up to WRITE_CHUNK_ROWS, in file order, in the one
transaction, as a pipeline (`ContactImporter.run`): while a background thread runs chunk k's
look-ups and writes chunk k-1 (index upkeep is most of an import's database time), the
request thread normalizes chunk k+1 and plans chunk k, so Python and PostgreSQL each keep a
core busy. The run's maps (email → contact, phone → contact) span the chunks, and new contacts
take their ids from the table's sequence when looked up, so a later chunk updates them by id;
the result is the same as one chunk (tests compare them).

Dry runs do steps 1–2 without the lock and stop before step 3.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import io
import json
import sys
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import psycopg
from django.db import connection, transaction
from django.utils import timezone
from psycopg.copy import FileWriter
from psycopg.types.json import Jsonb

from contacts.contact_fields import TEXT_FIELDS, WRITABLE_FIELDS
from contacts.importing.options import ImportOptions
from contacts.models import Contact, ContactTag, FieldValue
from contacts.normalize import MAX_TAGS_PER_CONTACT, ContactNormalizer, build_folded, build_search_text
from contacts.services import stored_rows
from crm.errors import Conflict
from customization.catalog import ensure_tags
from customization.models import Tag
from customization.text import fold

MAX_REPORTED_ERRORS = 1000
CONFLICT_DETAIL = (
    "A concurrent change to this organization's contacts collided with the import; nothing was imported. "
    "Retry the import."
)
# Rows normalized while the previous chunk is written (see the module docstring). Smaller chunks
# overlap more but pay a staging table and an existing-contacts read each.
WRITE_CHUNK_ROWS = 2_500
# First key of pg_advisory_xact_lock(int, int); the second is the org id.
IMPORT_LOCK_CLASS = 0x1C0A

# Contact columns the engine writes, in staging-table order, with their types and defaults.
SQL_TYPES = {"text": "text", "textarea": "text", "email": "text", "phone": "text", "boolean": "bool", "user": "int8"}
COLUMN_SPEC: dict[str, tuple[str, Any]] = {
    **{spec.column: (SQL_TYPES[spec.type], spec.empty) for spec in WRITABLE_FIELDS if spec.column},
    # Derived by the normalizer.
    "email_key": ("text", None),
    "folded": ("jsonb", {}),
    "search_text": ("text", ""),
}
COLUMNS = tuple(COLUMN_SPEC)
COLUMN_TYPES = tuple(kind for kind, _ in COLUMN_SPEC.values())
DEFAULTS: dict[str, Any] = {column: default for column, (_, default) in COLUMN_SPEC.items()}
# The rows a chunk writes, as COPYed into contacts (new contacts) or the staging table (updates).
WRITE_COLUMNS = ("id", "org_id", *COLUMNS, "created_at", "updated_at")
WRITE_TYPES = ("int8", "int8", *COLUMN_TYPES, "timestamptz", "timestamptz")
STAGING = "contact_import_staging"
# A chunk's tags and custom values, staged the same way.
# `created_at` of tag and value rows is their contact's (contacts.models.ContactTag).
TAG_STAGING = "contact_import_tags"
TAG_COLUMNS, TAG_TYPES = ("contact_id", "tag_id", "created_at"), ("int8", "int8", "timestamptz")
VALUE_STAGING = "contact_import_values"
VALUE_COLUMNS = (
    "contact_id", "field_id", "position", "value", "folded", "text_key", "number", "day", "moment", "created_at",
)  # fmt: skip
VALUE_TYPES = ("int8", "int8", "int2", "jsonb", "text", "text", "float8", "date", "timestamptz", "timestamptz")
# The org id in the engine's look-ups and updates, as a one-row subquery rather than a constant,
# so the org's own statistics cannot steer them: for an org that was empty at the last ANALYZE
# (a new org's first import) they say zero rows, and the planner then reads the whole org through
# some other org_id index for every chunk, where the unique (org_id, email_key) index and the
# primary key find each row (measured with the first wave's per-org indexes: upserts 4,977 →
# 8,418 rows/s).
ORG_PARAM = "(SELECT %s::bigint)"
# A raw input key → the model value it sets.
VALUE_KEY = {"assigned_to": "assigned_to_id"}


@dataclass
class RowError:
    row: int
    field: str | None
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class ImportReport:
    total: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_dropped: int = 0  # errors beyond MAX_REPORTED_ERRORS, counted only
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False

    def fail(self, row: int, errors: list[tuple[str | None, str]]) -> None:
        self.failed += 1
        for attr, message in errors:
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append(RowError(row, attr, message))
            else:
                self.errors_dropped += 1

    def as_dict(self) -> dict:
        body = {
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": self.failed,
            "errors": [e.as_dict() for e in sorted(self.errors, key=lambda e: e.row)],  # stable: a row's own order
            "dry_run": self.dry_run,
            "ignored_columns": self.ignored_columns,
        }
        if self.errors_dropped:
            body["errors_truncated"] = self.errors_dropped
        return body


@dataclass
class Existing:
    """A contact already in the database that some row matched (read FOR UPDATE)."""

    id: int
    first_name: str
    last_name: str
    name: str
    email: str | None
    phone: str | None
    company: str
    source: str
    notes: str
    dnc: bool
    assigned_to_id: int | None
    folded: dict
    search_text: str
    email_key: str | None = None
    created_at: dt.datetime | None = None
    tags: list[str] = field(default_factory=list)  # read for the cap on tags per contact


@dataclass
class Target:
    """A contact the import ends up writing: an existing one (update) or a new one (create)."""

    existing: Existing | None = None
    visible: bool = True
    given: dict = field(default_factory=dict)  # merged values of the keys the rows gave
    keys: set = field(default_factory=set)  # merged raw keys the rows gave (for derived values)
    created_id: int | None = None  # a new contact's id, reserved from the sequence when planned
    created_at: dt.datetime | None = None  # the contact's, once known (first staged, or read)

    @property
    def contact_id(self) -> int | None:
        return self.existing.id if self.existing is not None else self.created_id


def prune(raw: dict) -> dict:
    """Drop empty inputs: an import fills what a row gives and never clears a field."""
    data = {}
    for key, value in raw.items():
        if value is None or value == [] or (isinstance(value, str) and not value.strip()):
            continue
        if key == "custom" and isinstance(value, dict):
            value = {
                k: v
                for k, v in value.items()
                if v is not None and v != [] and not (isinstance(v, str) and not v.strip())
            }
            if not value:
                continue
        data[key] = value
    return data


class ContactImporter:
    """Imports rows into one org. Build once per request (or command run); `run()` per batch."""

    def __init__(self, normalizer: ContactNormalizer, options: ImportOptions):
        self.normalizer = normalizer
        self.options = options
        self.org_id = normalizer.org.id
        self.membership = normalizer.membership

    @property
    def _assigned_only_user(self) -> int | None:
        m = self.membership
        return m.user_id if m is not None and m.sees_only_assigned else None

    # --- the whole run ----------------------------------------------------------------

    def run(self, rows: Iterable[tuple[int, dict | None]], report: ImportReport | None = None) -> ImportReport:
        """Import `(row number, row)` pairs in one transaction; counts add into `report`.

        A pipeline over chunks. While the writer thread reads chunk k's existing contacts and
        then writes chunk k-1, this thread normalizes chunk k+1, then plans and stages chunk k.
        Chunk k's existing contacts are read before chunk k-1 is written, which is safe: every
        contact an earlier chunk touched is already in the run's maps, and a read contact the
        maps know is ignored.
        """
        report = report or ImportReport()
        write = not self.options.dry_run
        report.dry_run = not write
        self._by_email: dict[str, Target] = {}
        self._by_phone: dict[str, Target] = {}
        self._by_id: dict[int, Target] = {}  # every contact of the run's maps, by id
        self._inserted_ids: set[int] = set()  # new contacts staged for insert (later rows update them)
        self._tag_ids: dict[str, int] = {}  # catalog ids of the tag names seen so far
        self._id_sequence: str | None = None  # the contacts id sequence, looked up once
        staged: Staged | None = None  # the previous chunk, ready to be written
        with paused_gc(), transaction.atomic(), BackgroundWriter() as writer:
            raw = connection.connection
            if write:
                self._lock()
            chunks = _chunks(rows, WRITE_CHUNK_ROWS)
            candidates = self._clean_next(chunks, report)
            while candidates is not None:
                if write:
                    self._ensure_tags(candidates)
                looked_up: Future = Future()
                writer.submit(self._look_up_then_write, raw, candidates, staged, looked_up)
                upcoming = self._clean_next(chunks, report)  # overlaps the writer
                found, ids = looked_up.result()
                targets = self._plan(candidates, found, ids, report)
                staged = self._stage(targets) if write and targets else None  # overlaps the write
                if self._repoint(writer.wait(), staged):  # the connection is ours again
                    staged = self._restage(staged)  # a raced contact changed this chunk's rows
                candidates = upcoming
            if staged is not None:
                self._write_chunk(raw, staged)
        return report

    def _look_up_then_write(self, raw: psycopg.Connection, candidates, staged: Staged | None, looked_up: Future):
        """The writer thread's turn: chunk k's existing contacts and new ids (into `looked_up`),
        then the write of chunk k-1 (`staged`), whose outcome is returned."""
        try:
            with raw.cursor() as cursor:
                found = self._fetch_existing(cursor, candidates)
                ids = [] if self.options.dry_run else self._reserve_ids(cursor, len(candidates))
        except BaseException as exc:
            looked_up.set_exception(exc)
            raise
        looked_up.set_result((found, ids))
        return self._write_chunk(raw, staged) if staged is not None else None

    # --- 1. normalize -----------------------------------------------------------------

    def _clean_next(self, chunks: Iterator[list], report: ImportReport) -> list[tuple[int, dict, set]] | None:
        """The next chunk's valid rows (maybe none), or None after the last chunk."""
        chunk = next(chunks, None)
        return None if chunk is None else self._clean(chunk, report)

    def _clean(self, rows, report: ImportReport) -> list[tuple[int, dict, set]]:
        candidates = []
        extra_tags = list(self.options.tags)
        for number, raw in rows:
            report.total += 1
            if not isinstance(raw, dict):
                report.fail(number, [(None, "Expected an object with contact fields.")])
                continue
            data = prune(raw)
            if not data:
                report.fail(number, [(None, "The row is empty.")])
                continue
            if extra_tags:
                tags = data.get("tags", [])
                data["tags"] = [*tags, *extra_tags] if isinstance(tags, list) else tags
            values, errors = self.normalizer.clean(data, derive=False)  # final_values() derives
            if errors:
                report.fail(number, [(e.attr, e.detail) for e in errors])
                continue
            given = {}
            for key in data:
                value_key = VALUE_KEY.get(key, key)
                if value_key in values:
                    given[value_key] = values[value_key]
            candidates.append((number, given, set(data)))
        return candidates

    # --- 2. resolve rows against the database and each other -----------------------------

    def _lock(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [IMPORT_LOCK_CLASS, self.org_id % 2**31])

    def _fetch_existing(self, cursor, candidates) -> list[Existing]:
        """The contacts (not yet in the run's maps) holding the emails/phones of these rows."""
        emails = sorted({fold(g["email"]) for _, g, _ in candidates if g.get("email")} - self._by_email.keys())
        phones = []
        if self.options.dedupe_phone:
            phones = sorted({g["phone"] for _, g, _ in candidates if g.get("phone")} - self._by_phone.keys())
        arms = [("email_key = ANY(%s::text[])", emails), ("phone = ANY(%s::text[])", phones)]
        arms = [(sql, keys) for sql, keys in arms if keys]
        if not arms:
            return []
        where = "(" + " OR ".join(sql for sql, _ in arms) + ")"
        return self._read_contacts(cursor, where, [keys for _, keys in arms], lock=True)

    def _ensure_tags(self, candidates) -> None:
        """The rows' tag names join the catalog (new names only: one INSERT, seldom needed)."""
        names = {tag for _, given, _ in candidates for tag in given.get("tags", ())} - self._tag_ids.keys()
        if names:
            self._tag_ids.update(ensure_tags(self.org_id, names))

    def _reserve_ids(self, cursor, count: int) -> list[int]:
        """Ids for a chunk's new contacts from the table's own sequence (one per row, since at
        most that many are new; unused ones are gaps, as after any rollback), last first for
        pop(). So a chunk is staged as soon as it is planned, and a later chunk can update a
        new contact by id while this one is written."""
        if not count:
            return []
        if self._id_sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Contact._meta.db_table])
            (self._id_sequence,) = cursor.fetchone()
        # The name as a constant regclass: resolved once, not per row (6x cheaper).
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
            [self._id_sequence, count],
        )
        return [contact_id for (contact_id,) in reversed(cursor.fetchall())]

    def _lookup_sql(self, where: str, lock: bool) -> str:
        """The org's contacts matching `where`, in id order; its parameters: the org id, then `where`'s."""
        return (
            f"SELECT id, created_at, {', '.join(COLUMNS)} FROM {Contact._meta.db_table} "
            f"WHERE org_id = {ORG_PARAM} AND {where} ORDER BY id"
            + (" FOR UPDATE" if lock and not self.options.dry_run else "")
        )

    def _read_contacts(self, cursor, where: str, params: list, lock: bool) -> list[Existing]:
        cursor.execute(self._lookup_sql(where, lock), [self.org_id, *params])
        names = ["id", "created_at", *COLUMNS]
        found = [Existing(**dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
        for contact in found:  # Django's psycopg setup leaves jsonb undecoded
            if isinstance(contact.folded, str):
                contact.folded = json.loads(contact.folded)
        if found:
            by_id = {contact.id: contact for contact in found}
            cursor.execute(
                f"SELECT ct.contact_id, t.name FROM {ContactTag._meta.db_table} ct "
                f"JOIN {Tag._meta.db_table} t ON t.org_id = ct.org_id AND t.id = ct.tag_id "
                f"WHERE ct.org_id = {ORG_PARAM} AND ct.contact_id = ANY(%s) ORDER BY t.name",
                [self.org_id, list(by_id)],
            )
            for contact_id, name in cursor.fetchall():
                by_id[contact_id].tags.append(name)
        return found

    def _plan(self, candidates, found: list[Existing], ids: list[int], report: ImportReport) -> list[Target]:
        """Resolve rows in file order against the run's maps; the targets this chunk writes."""
        options = self.options
        by_email, by_phone = self._by_email, self._by_phone
        scope_user = self._assigned_only_user
        for contact in found:
            if contact.id in self._by_id:
                continue  # an earlier chunk has it: its state here is newer than the database's
            target = Target(contact, visible=scope_user is None or contact.assigned_to_id == scope_user)
            self._by_id[contact.id] = target
            if contact.email:
                by_email.setdefault(contact.email_key, target)
            # Phones are not unique: for an assigned-only member a contact they cannot see holds
            # no phone at all, so a row with that number becomes their own new contact, exactly
            # as with an unused number (anything else would answer "that number exists").
            if contact.phone and options.dedupe_phone and target.visible:
                by_phone.setdefault(contact.phone, target)  # the oldest contact with that phone

        written: dict[int, Target] = {}  # by id(target), in order
        for number, given, keys in candidates:
            email_key = fold(given["email"]) if given.get("email") else None
            phone = given.get("phone")
            target, matched_on, old_phone = None, None, None
            if options.dedupe_email and email_key and email_key in by_email:
                target, matched_on = by_email[email_key], "email"
            elif options.dedupe_phone and phone and phone in by_phone:
                target, matched_on = by_phone[phone], "phone"

            holder = by_email.get(email_key) if email_key else None
            if holder is not None and holder is not target:
                report.fail(number, [("email", "Another contact in this organization already has this email.")])
                continue
            if target is None:
                target = Target(given=dict(given), keys=set(keys), created_id=ids.pop() if ids else None)
                if target.created_id is not None:
                    self._by_id[target.created_id] = target
                report.created += 1
            elif not target.visible:
                report.fail(
                    number,
                    [
                        (
                            matched_on,
                            f"A contact with this {matched_on} exists outside the contacts "
                            "assigned to you; it was left unchanged.",
                        )
                    ],
                )
                continue
            elif options.on_duplicate == "skip":
                report.skipped += 1
                continue
            else:
                old_phone = target.given.get("phone") or (target.existing.phone if target.existing else None)
                error = self._merge(target, given, keys)
                if error:
                    report.fail(number, [error])
                    continue
                report.updated += 1
            written[id(target)] = target
            if email_key:
                by_email[email_key] = target
            if phone and options.dedupe_phone:
                if old_phone and old_phone != phone and by_phone.get(old_phone) is target:
                    del by_phone[old_phone]  # the contact moved to another number
                by_phone.setdefault(phone, target)
        return list(written.values())

    @staticmethod
    def _merge(target: Target, given: dict, keys: set) -> tuple[str, str] | None:
        merged = dict(target.given)
        current_email = merged.get("email") or (target.existing.email if target.existing else None)
        for key, value in given.items():
            if key == "email" and current_email and fold(current_email) == fold(value):
                continue  # the same address in another case: keep the stored spelling
            if key == "tags":
                merged["tags"] = [*merged.get("tags", []), *(t for t in value if t not in merged.get("tags", []))]
            elif key == "custom":
                merged["custom"] = {**merged.get("custom", {}), **value}
            else:
                merged[key] = value
        if "tags" in merged:
            current = target.existing.tags if target.existing else []
            if len(set(current) | set(merged["tags"])) > MAX_TAGS_PER_CONTACT:
                return "tags", f"At most {MAX_TAGS_PER_CONTACT} tags per contact."
        target.given = merged
        target.keys |= keys
        return None

    def final_values(self, target: Target) -> dict:
        """Every written column of `target`, derived exactly as ContactNormalizer derives them."""
        existing = target.existing
        values = {key: value for key, value in target.given.items() if key not in ("tags", "custom")}
        self.normalizer.derive(values, target.keys, existing)
        if existing is None and "assigned_to_id" not in values and self._assigned_only_user is not None:
            values["assigned_to_id"] = self._assigned_only_user
        base = {c: getattr(existing, c) for c in COLUMNS} if existing is not None else DEFAULTS
        return {c: values.get(c, base[c]) for c in COLUMNS}

    # --- 3. write --------------------------------------------------------------------

    def _stage(self, targets: list[Target]) -> Staged:
        """The chunk's final rows as COPY data: new contacts and updates apart, then the tags and
        custom values the rows gave (Python only).

        Formatted here, on the caller's thread, so the writer thread only sends bytes and seldom
        needs the GIL. The values are those of this moment: later chunks may merge more into
        the same contacts, and are staged again then (adding a tag or a value twice is harmless).
        """
        now = timezone.now()
        creating, updating, new = [], [], {}
        tags, new_values, updated_values = [], [], []
        fields = self.normalizer.custom_fields
        for target in targets:
            contact_id = target.contact_id
            if target.created_at is None:
                target.created_at = target.existing.created_at if target.existing is not None else now
            row = [contact_id, self.org_id, *self._column_values(target), target.created_at, now]
            is_new = target.existing is None and target.created_id not in self._inserted_ids
            if is_new:
                creating.append(row)
                new[target.created_id] = target
            else:
                updating.append(row)
            tags += [(contact_id, self._tag_ids[name], target.created_at) for name in target.given.get("tags", ())]
            values = new_values if is_new else updated_values
            for key, canonical in target.given.get("custom", {}).items():
                items = stored_rows(self.org_id, contact_id, fields[key], canonical, target.created_at)
                values += [_value_row(item) for item in items]
        self._inserted_ids.update(new)  # writes run in order: later chunks update these
        return Staged(
            targets,
            new,
            _copy_data(creating, WRITE_TYPES),
            _copy_data(updating, WRITE_TYPES),
            len(updating),
            _copy_data(tags, TAG_TYPES),
            _copy_data(new_values, VALUE_TYPES),
            _copy_data(updated_values, VALUE_TYPES),
        )

    def _restage(self, staged: Staged) -> Staged:
        self._inserted_ids.difference_update(staged.new)
        return self._stage(staged.targets)

    def _column_values(self, target: Target) -> list:
        values = self.final_values(target)
        return [Jsonb(values[c]) if c == "folded" else values[c] for c in COLUMNS]

    def _write_chunk(self, raw: psycopg.Connection, staged: Staged) -> tuple[Staged, dict[int, str]]:
        """Write one chunk: most of an import's database time (index upkeep).

        Runs on the writer thread with the request's psycopg connection itself (Django's wrapper
        is per thread), while the caller plans and normalizes the next chunks and issues no
        query. New contacts are inserted from the staging table with a plain INSERT (row-level
        security rules out COPY into the table itself); if a concurrent single create took one
        of their emails, they go through `INSERT … ON CONFLICT` instead, which merges into it.
        Then the tags (added) and custom values (replaced per key) of the chunk. Returns the
        planned ids that such a create made wrong, with their emails (see `_repoint`).
        """
        table = Contact._meta.db_table
        raced: dict[int, str] = {}
        try:
            with raw.cursor() as cursor:
                if staged.creating:
                    _create_staging(cursor, STAGING, WRITE_COLUMNS, WRITE_TYPES, staged.creating)
                    cursor.execute("SAVEPOINT contact_import_insert")
                    try:
                        cursor.execute(self._insert_sql(table, merging=False))
                        cursor.execute("RELEASE SAVEPOINT contact_import_insert")
                    except psycopg.errors.UniqueViolation:
                        cursor.execute("ROLLBACK TO SAVEPOINT contact_import_insert")
                        raced = self._insert_merging(cursor)
                    cursor.execute(f"DROP TABLE {STAGING}")
                if staged.updating:
                    _create_staging(cursor, STAGING, WRITE_COLUMNS, WRITE_TYPES, staged.updating)
                    cursor.execute(self._update_sql(table), [self.org_id])
                    updated = cursor.rowcount
                    cursor.execute(f"DROP TABLE {STAGING}")
                    if updated != staged.updates:  # a contact to update is gone: never drop rows silently
                        raise psycopg.errors.IntegrityError(f"{updated} of {staged.updates} contacts updated")
                self._write_tags_and_values(cursor, staged, raced)
        except psycopg.errors.IntegrityError:  # raw psycopg: Django does not wrap the writer's errors
            # Only a concurrent single-contact write can get here (imports of an org are serialized).
            raise Conflict(CONFLICT_DETAIL, code="import_conflict")
        return staged, raced

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
            _create_staging(cursor, TAG_STAGING, TAG_COLUMNS, TAG_TYPES, staged.tags)
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
            _create_staging(cursor, VALUE_STAGING, VALUE_COLUMNS, VALUE_TYPES, data)
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

    def _repoint(self, written: tuple[Staged, dict[int, str]] | None, staged: Staged | None) -> bool:
        """A single-contact create took an email this import was creating (it does not take the
        import lock), so that row merged into it or was skipped: from now on the target is that
        contact, as read back (the rows' values stay merged on top, which repeats harmlessly).
        Its derived columns are computed again from the merged row (they are folded in Python).
        True when `staged` (the next chunk, not yet written) holds such a target."""
        raced = written[1] if written else None
        if not raced:
            return False
        chunk = written[0]
        with connection.connection.cursor() as cursor:
            read = self._read_contacts(cursor, "email_key = ANY(%s::text[])", [sorted(set(raced.values()))], lock=True)
            for contact in read:
                contact.folded = build_folded(vars(contact))
                contact.search_text = build_search_text(contact.name, contact.email, contact.phone, contact.company)
            cursor.executemany(
                f"UPDATE {Contact._meta.db_table} SET folded = %s, search_text = %s WHERE id = %s",
                [(Jsonb(c.folded), c.search_text, c.id) for c in read],
            )
        by_email = {contact.email_key: contact for contact in read if contact.email_key}
        scope_user = self._assigned_only_user
        repointed = set()
        for planned_id, email in raced.items():
            target = chunk.new[planned_id]
            contact = by_email.get(email)
            if contact is None:  # deleted meanwhile: nothing left to merge into
                raise Conflict(CONFLICT_DETAIL, code="import_conflict")
            target.created_id, target.existing, target.created_at = None, contact, contact.created_at
            target.visible = scope_user is None or contact.assigned_to_id == scope_user
            self._by_id[contact.id] = target
            repointed.add(id(target))
        return staged is not None and any(id(t) in repointed for t in staged.targets)

    def _insert_sql(self, table: str, merging: bool) -> str:
        columns = ", ".join(WRITE_COLUMNS)
        insert = f"INSERT INTO {table} AS c ({columns}) SELECT {columns} FROM {STAGING} ORDER BY id"
        if not merging:
            return insert  # the usual case: a conflict is a unique violation, and then merging runs
        insert += " ON CONFLICT (org_id, email_key) "
        returning = " RETURNING c.id, c.email_key"
        if self.options.on_duplicate == "skip":
            return insert + "DO NOTHING" + returning
        # A single-contact create raced this import: fill the given fields, as an update would
        # (folded and search_text are computed again in Python by `_repoint`).
        fill = {spec.column: f"COALESCE(NULLIF(EXCLUDED.{spec.column}, ''), c.{spec.column})" for spec in TEXT_FIELDS}
        sets = [f"{c} = {expr}" for c, expr in fill.items()] + [
            "phone = COALESCE(EXCLUDED.phone, c.phone)",
            "dnc = c.dnc OR EXCLUDED.dnc",
            "assigned_to_id = COALESCE(c.assigned_to_id, EXCLUDED.assigned_to_id)",
            "updated_at = EXCLUDED.updated_at",
        ]
        where = ""
        if self._assigned_only_user is not None:
            where = f" WHERE c.assigned_to_id = {int(self._assigned_only_user)}"
        return insert + "DO UPDATE SET " + ", ".join(sets) + where + returning

    @staticmethod
    def _update_sql(table: str) -> str:
        sets = ", ".join(f"{c} = s.{c}" for c in (*COLUMNS, "updated_at"))
        return f"UPDATE {table} AS c SET {sets} FROM {STAGING} AS s WHERE c.id = s.id AND c.org_id = {ORG_PARAM}"


@dataclass
class Staged:
    """A chunk ready for the writer: COPY data of its new contacts, its updates, its tags (added)
    and its custom values (of new contacts, and replacing those of updated ones)."""

    targets: list[Target]
    new: dict[int, Target]  # by planned id
    creating: bytes
    updating: bytes
    updates: int
    tags: bytes = b""
    new_values: bytes = b""
    updated_values: bytes = b""


def _value_row(row: FieldValue) -> tuple:
    return tuple(Jsonb(row.value) if c == "value" else getattr(row, c) for c in VALUE_COLUMNS)


def _copy_data(rows: list, types: tuple[str, ...]) -> bytes:
    """`rows` in COPY text format (psycopg's own formatting, without a database round trip)."""
    if not rows:
        return b""
    buffer = io.BytesIO()
    with psycopg.Copy(connection.connection.cursor(), writer=FileWriter(buffer)) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
    return buffer.getvalue()


def _create_staging(cursor, table: str, columns: tuple[str, ...], types: tuple[str, ...], data: bytes) -> None:
    """A temp table of `columns`, filled with the COPY `data`."""
    definition = ", ".join(f"{c} {t}" for c, t in zip(columns, types, strict=True))
    cursor.execute(f"CREATE TEMP TABLE {table} ({definition}) ON COMMIT DROP")
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(data)


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    """`rows` in chunks of `size`, smaller at both ends of the run.

    The pipeline's first chunk is normalized and planned before anything is written, and its
    last one written after everything is planned: nothing overlaps them. So chunks grow from
    size/8, doubling, and the last rows go out in halves down to size/8.
    """
    smallest = max(1, size // 8)
    iterator = iter(rows)
    buffer: deque = deque()
    want = smallest
    while True:
        buffer.extend(islice(iterator, want + size - len(buffer)))
        if len(buffer) < want + size:  # the input has ended
            break
        yield [buffer.popleft() for _ in range(want)]
        want = min(2 * want, size)
    while buffer:
        count = len(buffer) if len(buffer) <= smallest else max(smallest, (len(buffer) + 1) // 2)
        yield [buffer.popleft() for _ in range(count)]


class BackgroundWriter:
    """At most one pending write, run on a thread so the caller can compute meanwhile.

    psycopg releases the GIL while it waits for PostgreSQL, so the caller's Python work and the
    database's work overlap. The caller must `wait()` before using the connection itself. On the
    way out the pending write is always finished first (a rollback must not race it); its error
    is raised unless another one is already on its way.

    Each time the writer comes back from PostgreSQL it needs the GIL, which the busy caller
    only yields after the interpreter's switch interval (5 ms by default): a dozen such waits
    per chunk left PostgreSQL idle. While a writer runs the interval is 0.5 ms (measured: the
    import 15–20% faster).
    """

    SWITCH_INTERVAL = 0.0005

    def __init__(self):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self._pending: Future | None = None
        _SWITCH_INTERVAL.take(self.SWITCH_INTERVAL)

    def submit(self, fn, *args) -> None:
        self.wait()
        self._pending = self._executor.submit(fn, *args)

    def wait(self):
        """The pending write's result (None if there was none); its error is raised here."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                wait_for([self._pending])
        finally:
            self._executor.shutdown(wait=True)
            _SWITCH_INTERVAL.release()


class SharedSetting:
    """A process-wide interpreter setting changed while any import needs it (imports may run on
    several threads at once): the first taker saves the value in force, the last one restores it."""

    def __init__(self, read, write):
        self._read, self._write = read, write
        self._lock = threading.Lock()
        self._takers = 0
        self._saved = None

    def take(self, value) -> None:
        with self._lock:
            if self._takers == 0:
                self._saved = self._read()
                self._write(value)
            self._takers += 1

    def release(self) -> None:
        with self._lock:
            self._takers -= 1
            if self._takers == 0:
                self._write(self._saved)


_SWITCH_INTERVAL = SharedSetting(sys.getswitchinterval, sys.setswitchinterval)
_GC_ENABLED = SharedSetting(gc.isenabled, lambda on: gc.enable() if on else gc.disable())


@contextlib.contextmanager
def paused_gc():
    """The cyclic garbage collector off for the block (nested and concurrent blocks share one pause).

    An import holds the parsed file (up to 100,000 dicts) and its plan, all new objects, and
    every few thousand allocations the collector runs; its full passes walk all of them. Measured
    on a 25,000-row import: 0.95 s of 3.4 s, a third of the request thread's time. Import data
    are plain dicts, lists and strings, freed by reference counting; what cycles a request does
    make are collected by the first pass after the block.
    """
    _GC_ENABLED.take(False)
    try:
        yield
    finally:
        _GC_ENABLED.release()
