"""Bulk actions on a smart list (DESIGN §4 "Actions on a smart list"): `POST /contacts/bulk`
starts a job; a worker applies it.

The web side (`start`) validates the action as a PATCH would (the same normalizer) and defers a
job. The worker (`run`) first writes the selection, the smart list as the job starts, into the
job's journal (contacts.journal), one row per contact, by one `INSERT … SELECT` of the search
compiler's query; a count other than `expected_count` fails the job there, in that step's
transaction, so nothing is touched. Then it works through the journal in chunks of CHUNK_CONTACTS
by contact id, one step (transaction) each:

1. lock the chunk's contacts that still exist and are still in the creator's scope (FOR NO KEY
   UPDATE, in id order: a concurrent PATCH of one of them waits for the step, or the step for it,
   and the later writer works on the other's result, so neither is lost);
2. trash: move them to the trash (contacts.trash; undo restores those the job trashed);
   tags: insert or delete the tag rows, journal what was inserted or deleted and set
   `updated_at` of those contacts, in one statement; fields: record the touched parts' `before`,
   apply the action by set-based statements, record `after`; contacts the action left as they
   were have both cleared (undo passes them by), the others get `updated_at`.

The job's `position` is the last contact id done, so a worker that dies mid-job is replaced by one
that goes on after the last committed chunk. Undo (contacts.undo) puts back every touched part
nobody changed since. Steps take the org's import lock, so imports and bulk actions of one org
take turns by step instead of deadlocking on each other's rows; other orgs never wait.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection

from contacts.contact_fields import WRITABLE_FIELDS
from contacts.importing.write import lock_org
from contacts.job_scope import normalizer_for
from contacts.journal import FIELD_COLUMNS, JOURNAL, ORG, snapshot_sql
from contacts.models import Contact, ContactJournal, ContactTag, FieldValue
from contacts.normalize import MAX_TAGS_PER_CONTACT, SEARCHED_FIELDS, TEXT_FIELD_NAMES, ContactNormalizer
from contacts.services import stored_rows
from contacts.smart_list import SmartList
from contacts.trash import move_to_trash
from crm.errors import FieldError, InvalidInput
from customization.catalog import ensure_tags, normalize_tag
from customization.models import CustomField, Tag
from jobs.errors import JobFailed
from jobs.models import Job
from jobs.runner import step
from jobs.services import enqueue

ACTIONS = ("add_tags", "remove_tags", "assign_to", "set", "clear", "trash")
CHUNK_CONTACTS = 5_000
MAX_REPORTED_FAILURES = 1000
CONTACTS, TAGS, VALUES = Contact._meta.db_table, ContactTag._meta.db_table, FieldValue._meta.db_table
# Built-in fields a bulk `set` cannot give one value for every contact.
NOT_SETTABLE = {
    "email": "An email is unique per contact; it cannot be set on many at once (`clear` it, or PATCH each).",
    "tags": "Use the `add_tags` or `remove_tags` action.",
}


@dataclass(frozen=True)
class BulkAction:
    """One action: tag names (`add_tags`, `remove_tags`) or a PATCH body (`set`, `clear`,
    `assign_to`: `{"company": …, "custom": {"tier": …}}`, null clearing)."""

    name: str
    tags: tuple[str, ...] = ()
    patch: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Any, errors: list[FieldError]) -> BulkAction | None:
        """The action's shape; its values are checked by `validate` (the org's normalizer)."""
        if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in ACTIONS:
            names = ", ".join(f"`{name}`" for name in ACTIONS)
            errors.append(FieldError("action", "invalid_action", f"Expected an object with one of {names}."))
            return None
        name, value = next(iter(raw.items()))
        attr = f"action.{name}"
        if name in ("add_tags", "remove_tags"):
            return cls(name, tags=_tag_names(value, attr, errors))
        if name == "assign_to":
            return cls(name, patch={"assigned_to": value})
        if name == "trash":
            if value is not True:
                errors.append(FieldError(attr, "wrong_type", "Expected `true`."))
                return None
            return cls(name)
        if name == "set":
            if not isinstance(value, dict) or not value:
                errors.append(FieldError(attr, "wrong_type", "Expected an object of fields and their values."))
                return None
            return cls(name, patch=_patch(value, attr, errors, clearing=False))
        if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
            errors.append(FieldError(attr, "wrong_type", "Expected a non-empty list of field names."))
            return None
        return cls(name, patch=_patch(dict.fromkeys(value), attr, errors, clearing=True))

    @classmethod
    def from_params(cls, params: dict) -> BulkAction:
        return cls(params["name"], tuple(params.get("tags", ())), params.get("patch", {}))

    def as_params(self) -> dict:
        return {"name": self.name, "tags": list(self.tags), "patch": self.patch}

    def validate(self, normalizer: ContactNormalizer, errors: list[FieldError]) -> dict:
        """The model values the patch sets (as ContactNormalizer.clean), errors under `action.<name>`."""
        if not self.patch:
            return {}
        values, problems = normalizer.clean(self.patch, existing=SimpleNamespace(), derive=False)
        prefix = "action" if self.name == "assign_to" else f"action.{self.name}"
        errors.extend(FieldError(f"{prefix}.{p.attr}" if p.attr else prefix, p.code, p.detail) for p in problems)
        return values


def _tag_names(raw: Any, attr: str, errors: list[FieldError]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        errors.append(FieldError(attr, "wrong_type", "Expected a non-empty list of tag names."))
        return ()
    names: dict[str, None] = {}
    for index, item in enumerate(raw):
        try:
            names[normalize_tag(item)] = None
        except ValueError as exc:
            errors.append(FieldError(f"{attr}.{index}", "invalid_tag", str(exc)))
    if len(names) > MAX_TAGS_PER_CONTACT:
        errors.append(FieldError(attr, "too_many", f"At most {MAX_TAGS_PER_CONTACT} tags."))
    return tuple(names)


def _patch(given: dict, attr: str, errors: list[FieldError], clearing: bool) -> dict:
    """`{"company": x, "custom.tier": y}` → a PATCH body `{"company": x, "custom": {"tier": y}}`."""
    patch: dict = {}
    writable = {spec.name for spec in WRITABLE_FIELDS}
    for name, value in given.items():
        if name.startswith("custom."):
            patch.setdefault("custom", {})[name[len("custom.") :]] = value
        elif name not in writable:
            errors.append(FieldError(f"{attr}.{name}", "unknown_field", f"No writable contact field {name!r}."))
        elif name in NOT_SETTABLE and not (clearing and name == "email"):
            errors.append(FieldError(f"{attr}.{name}", "not_bulk_settable", NOT_SETTABLE[name]))
        else:
            patch[name] = value
    return patch


# --- the web side ---------------------------------------------------------------------------------


def start(normalizer: ContactNormalizer, user_id: int, given: dict, smart_list: SmartList, staff: bool = False) -> Job:
    """A bulk job on `smart_list` (`given`: `action`, `expected_count`), once the action is valid
    for the caller (InvalidInput naming what is not). `staff`: the admin's, on the whole org."""
    errors: list[FieldError] = []
    action = BulkAction.parse(given.get("action"), errors)
    if action is not None:
        action.validate(normalizer, errors)
    if errors:
        raise InvalidInput(errors)
    params = {
        "selection": smart_list.as_params(),
        "expected_count": given["expected_count"],
        "action": action.as_params(),
        "staff": staff,
    }
    return enqueue(normalizer.org.id, user_id, Job.Kind.BULK, params)


# --- the worker side ------------------------------------------------------------------------------


def run(job: Job) -> None:
    action = BulkAction.from_params(job.params["action"])
    if job.progress_total is None:
        with step(job):
            _select(job, normalizer_for(job))
    while True:
        with step(job):
            lock_org(job.org_id)
            done = Chunk(job, action, normalizer_for(job)).apply()
        if done < CHUNK_CONTACTS:
            break


def _select(job: Job, normalizer: ContactNormalizer) -> None:
    """The selection, as the job starts, into the journal; a surprise count fails the job here."""
    smart_list = SmartList.from_params(job.params["selection"])
    try:
        rows = smart_list.contacts(normalizer.org, normalizer.membership).order_by().values_list("pk")
    except InvalidInput as exc:  # a field of the query was deleted since
        raise JobFailed(f"The selection cannot be applied: {exc.errors[0].detail}", "invalid_selection")
    try:
        sql, params = rows.query.sql_with_params()
    except EmptyResultSet:  # Django knows it selects nothing (and has no SQL for that)
        sql, params = None, []
    matched = 0
    if sql is not None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {JOURNAL} (org_id, job_id, contact_id, created, undone) "
                f"SELECT %s, %s, s.id, false, false FROM ({sql}) AS s(id)",
                [job.org_id, job.pk, *params],
            )
            matched = cursor.rowcount
    expected = job.params["expected_count"]
    job.result = {"matched": matched, "changed": 0, "unchanged": 0, "skipped": 0, "failed": 0, "failures": []}
    if matched != expected:
        raise JobFailed(
            f"The selection matches {matched:,} contacts now, not the {expected:,} expected; nothing was changed.",
            "count_changed",
        )
    job.progress_total = matched
    job.position = 0


@dataclass
class Chunk:
    """One step: the next CHUNK_CONTACTS contacts of the selection."""

    job: Job
    action: BulkAction
    normalizer: ContactNormalizer

    def apply(self) -> int:
        ids = list(
            ContactJournal.objects.filter(org_id=self.job.org_id, job_id=self.job.pk, contact_id__gt=self.job.position)
            .order_by("contact_id")
            .values_list("contact_id", flat=True)[:CHUNK_CONTACTS]
        )
        if not ids:
            return 0
        self.failed: list[tuple[int, str]] = []  # (contact id, why)
        self.fields: dict[str, CustomField] = {}
        errors: list[FieldError] = []
        values = self.action.validate(self.normalizer, errors)
        if errors:  # valid when it started: a field or member is gone since
            raise JobFailed(f"The action is no longer valid: {errors[0].attr}: {errors[0].detail}", "invalid_action")
        with connection.cursor() as cursor:
            self.cursor = cursor
            live = self._lock(ids)
            if self.action.name == "trash":
                changed = len(
                    move_to_trash(self.job.org_id, live, deleted_by=self.job.created_by_id, job_id=self.job.pk)
                )
            elif self.action.name in ("add_tags", "remove_tags"):
                changed = self._change_tags(live)
            else:
                parts = self._parts(values)
                self._record(live, parts, "before")
                self._write(live, values)
                self._record(live, parts, "after")
                changed = self._settle(live)
        result = self.job.result
        result["changed"] += changed
        result["unchanged"] += len(live) - changed - len(self.failed)
        result["skipped"] += len(ids) - len(live)
        result["failed"] += len(self.failed)
        room = MAX_REPORTED_FAILURES - len(result["failures"])
        result["failures"] += [{"contact_id": i, "reason": reason} for i, reason in self.failed[: max(room, 0)]]
        self.job.progress_done += len(ids)
        self.job.position = ids[-1]
        return len(ids)

    def _lock(self, ids: list[int]) -> list[int]:
        """The chunk's contacts that still exist and that the creator may still see, locked."""
        membership = self.normalizer.membership
        scope = " AND assigned_to_id = %(user)s" if membership and membership.sees_only_assigned else ""
        self.cursor.execute(
            f"SELECT id FROM {CONTACTS} WHERE org_id = %(org)s AND id = ANY(%(ids)s){scope} "
            "ORDER BY id FOR NO KEY UPDATE",
            {"org": self.job.org_id, "ids": ids, "user": membership.user_id if membership else None},
        )
        return [row[0] for row in self.cursor.fetchall()]

    def _parts(self, values: dict) -> dict:
        """What the action may change, as snapshot_sql's arguments and their parameters."""
        if "custom" in values:
            self.fields = self._custom_fields(values["custom"])
        columns = [c for c in FIELD_COLUMNS if c in values or (c in NAME_PARTS and NAME_PARTS & values.keys())]
        return {
            "columns": columns,
            "fields": "%(fields)s::bigint[]" if self.fields else None,
            "params": {"fields": [f.pk for f in self.fields.values()]},
        }

    def _custom_fields(self, patch: dict) -> dict[str, CustomField]:
        """The patch's field definitions, read FOR KEY SHARE (as contacts.services does): a
        concurrent deletion waits for this step, or happened and fails the job."""
        fields = self.normalizer.custom_fields
        ids = sorted(fields[key].pk for key in patch)
        self.cursor.execute(
            f"SELECT id FROM {CustomField._meta.db_table} WHERE org_id = %s AND id = ANY(%s) FOR KEY SHARE",
            [self.job.org_id, ids],
        )
        if len(self.cursor.fetchall()) != len(ids):
            raise JobFailed("A custom field of the action was deleted meanwhile.", "field_deleted")
        return {key: fields[key] for key in patch}

    def _record(self, live: list[int], parts: dict, side: str) -> None:
        """The touched parts' state into the journal's `before` or `after`: each contact read by its
        key in a scalar subquery (journal.ORG), never a join the planner could drive from the org."""
        state = snapshot_sql("c", parts["columns"], None, parts["fields"])
        self.cursor.execute(
            f"UPDATE {JOURNAL} j SET {side} = (SELECT {state} FROM {CONTACTS} c WHERE c.org_id = {ORG} "
            "AND c.id = j.contact_id) WHERE j.org_id = %(org)s AND j.job_id = %(job)s AND j.contact_id = ANY(%(live)s)",
            {"org": self.job.org_id, "job": self.job.pk, "live": live, **parts["params"]},
        )

    def _write(self, live: list[int], values: dict) -> None:
        builtin = {key: value for key, value in values.items() if key != "custom"}
        if builtin:
            self._set_columns(live, builtin)
        if self.fields:
            self._set_custom(live, values["custom"])

    def _change_tags(self, live: list[int]) -> int:
        """Tags added or removed, journaled and `updated_at` set, in one statement: the tag rows
        it inserted or deleted (RETURNING) are the journal's `after` or `before` (undo needs no
        more than what changed). Adding skips, as failed, the contacts it would take past
        MAX_TAGS_PER_CONTACT. Returns how many contacts changed."""
        org = self.job.org_id
        params = {"org": org, "job": self.job.pk, "live": live, "cap": MAX_TAGS_PER_CONTACT}
        if self.action.name == "add_tags":
            params["tags"] = sorted(ensure_tags(org, self.action.tags).values())
            params["over"] = self._over_tag_cap(params)
            change = (
                f"INSERT INTO {TAGS} (org_id, contact_id, tag_id, created_at) "
                f"SELECT c.org_id, c.id, t.id, c.created_at FROM {CONTACTS} c "
                "CROSS JOIN unnest(%(tags)s::bigint[]) t(id) "
                "WHERE c.org_id = %(org)s AND c.id = ANY(%(live)s) AND c.id <> ALL(%(over)s) ON CONFLICT DO NOTHING "
                "RETURNING contact_id, tag_id"
            )
            before, after = "'[]'::jsonb", "r.tags"
        else:
            params["tags"] = sorted(
                Tag.objects.filter(org_id=org, name__in=self.action.tags).values_list("id", flat=True)
            )
            change = (
                f"DELETE FROM {TAGS} WHERE org_id = %(org)s AND contact_id = ANY(%(live)s) "
                "AND tag_id = ANY(%(tags)s::bigint[]) RETURNING contact_id, tag_id"
            )
            before, after = "r.tags", "'[]'::jsonb"
        self.cursor.execute(
            f"WITH changed AS ({change}), "
            "per_contact AS (SELECT contact_id, jsonb_agg(tag_id ORDER BY tag_id) AS tags FROM changed "
            "GROUP BY contact_id), "
            f"journaled AS (UPDATE {JOURNAL} j SET "
            f"before = jsonb_build_object('fields', '{{}}'::jsonb, 'tags', {before}, 'values', '{{}}'::jsonb), "
            f"after = jsonb_build_object('fields', '{{}}'::jsonb, 'tags', {after}, 'values', '{{}}'::jsonb) "
            "FROM per_contact r WHERE j.org_id = %(org)s AND j.job_id = %(job)s AND j.contact_id = ANY(%(live)s) "
            "AND j.contact_id = r.contact_id "
            "RETURNING j.contact_id) "
            f"UPDATE {CONTACTS} c SET updated_at = now() FROM journaled WHERE c.org_id = %(org)s "
            "AND c.id = journaled.contact_id",
            params,
        )
        return self.cursor.rowcount

    def _over_tag_cap(self, params: dict) -> list[int]:
        others = (
            f"(SELECT count(*) FROM {TAGS} x WHERE x.org_id = c.org_id AND x.contact_id = c.id "
            "AND x.tag_id <> ALL(%(tags)s))"
        )
        self.cursor.execute(
            f"SELECT c.id FROM {CONTACTS} c WHERE c.org_id = %(org)s AND c.id = ANY(%(live)s) "
            f"AND {others} + cardinality(%(tags)s::bigint[]) > %(cap)s",
            params,
        )
        over = [row[0] for row in self.cursor.fetchall()]
        reason = f"It would have more than {MAX_TAGS_PER_CONTACT} tags."
        self.failed += [(contact_id, reason) for contact_id in over]
        return over

    def _set_columns(self, live: list[int], values: dict) -> None:
        """Built-in columns: each contact's derived columns (name parts, folded text, search
        text) computed by the normalizer from its own locked row, written by one UPDATE."""
        read = sorted({*TEXT_FIELD_NAMES, *SEARCHED_FIELDS})
        self.cursor.execute(
            f"SELECT id, {', '.join(read)} FROM {CONTACTS} WHERE org_id = %s AND id = ANY(%s)", [self.job.org_id, live]
        )
        rows = []
        for row in self.cursor.fetchall():
            existing = SimpleNamespace(**dict(zip(read, row[1:], strict=True)))
            new = dict(values)
            self.normalizer.derive(new, self.action.patch, existing)
            rows.append({"id": row[0], **new})
        columns = sorted(rows[0].keys() - {"id"}) if rows else []
        if not columns:
            return
        assignments = ", ".join(f"{column} = r.{column}" for column in columns)
        differs = " OR ".join(f"c.{column} IS DISTINCT FROM r.{column}" for column in columns)
        self.cursor.execute(
            f"UPDATE {CONTACTS} c SET {assignments} FROM jsonb_populate_recordset(NULL::{CONTACTS}, %s::jsonb) r "
            f"WHERE c.org_id = %s AND c.id = r.id AND ({differs})",
            [json.dumps(rows, default=_json_default), self.job.org_id],
        )

    def _set_custom(self, live: list[int], patch: dict) -> None:
        """Custom values: the keys' stored rows replaced by the same new ones on every contact."""
        items = [
            {
                "field_id": stored.field_id, "position": stored.position, "value": stored.value,
                "folded": stored.folded, "text_key": stored.text_key, "number": stored.number,
                "day": stored.day, "moment": stored.moment,
            }
            for key, canonical in patch.items()
            if canonical is not None
            for stored in stored_rows(self.job.org_id, 0, self.fields[key], canonical, None)
        ]  # fmt: skip
        org, field_ids = self.job.org_id, [f.pk for f in self.fields.values()]
        self.cursor.execute(
            f"DELETE FROM {VALUES} WHERE org_id = %s AND contact_id = ANY(%s) AND field_id = ANY(%s)",
            [org, live, field_ids],
        )
        if items:
            self.cursor.execute(
                f"INSERT INTO {VALUES} (org_id, contact_id, created_at, field_id, position, value, folded, "
                "text_key, number, day, moment) "
                "SELECT c.org_id, c.id, c.created_at, i.field_id, i.position, i.value, i.folded, i.text_key, "
                f"i.number, i.day, i.moment FROM {CONTACTS} c "
                f"CROSS JOIN jsonb_populate_recordset(NULL::{VALUES}, %s::jsonb) i "
                "WHERE c.org_id = %s AND c.id = ANY(%s)",
                [json.dumps(items, default=_json_default), org, live],
            )

    def _settle(self, live: list[int]) -> int:
        """Contacts left as they were drop out of the journal's undo; the changed ones get
        `updated_at` (every write of a contact sets it). Returns how many changed."""
        params = {"org": self.job.org_id, "job": self.job.pk, "live": live}
        self.cursor.execute(
            f"UPDATE {JOURNAL} SET before = NULL, after = NULL WHERE org_id = %(org)s AND job_id = %(job)s "
            "AND contact_id = ANY(%(live)s) AND before = after",
            params,
        )
        self.cursor.execute(
            f"UPDATE {CONTACTS} c SET updated_at = now() FROM {JOURNAL} j WHERE j.org_id = %(org)s "
            "AND j.job_id = %(job)s AND j.contact_id = ANY(%(live)s) AND j.before IS NOT NULL "
            "AND c.org_id = %(org)s AND c.id = j.contact_id",
            params,
        )
        return self.cursor.rowcount


NAME_PARTS = frozenset({"name", "first_name", "last_name"})  # setting one derives the others


def _json_default(value):
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def discard_unchanged(job: Job) -> None:
    """A finished bulk job keeps journal rows only for contacts it changed (what undo needs)."""
    ContactJournal.objects.filter(org_id=job.org_id, job_id=job.pk, before__isnull=True).delete()
