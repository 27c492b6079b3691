"""Async imports (`async=true`): a job of the task queue (DESIGN §4 Import, Jobs).

The web side (`start`) checks the body's header, keeps the body in the database in parts
(`ImportUpload`: web and worker machines share nothing but the database) and defers the job, in
the request's transaction. A worker (`run`) reads the parts as a stream, counts the rows once
(the job's `progress.total`), then imports them in steps of STEP_ROWS with the same engine as a
synchronous import; each step commits with the job's progress, its failed rows (`ImportIssue`,
the error file) and its journal (contacts.journal, for undo). A job resumed after its
worker died goes on after the last committed step: no row applied twice, none skipped.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from itertools import islice

from django.conf import settings
from django.db import connection

from contacts.importing.engine import ContactImporter
from contacts.importing.options import ImportOptions
from contacts.importing.parsing import CONTACT_COLUMNS, CsvRows, encoding_error, json_row
from contacts.importing.report import ImportReport
from contacts.job_scope import normalizer_for
from contacts.journal import Journal
from contacts.models import ImportIssue, ImportUpload
from crm.db_security import as_org
from crm.errors import FieldError, InvalidInput, TooLarge
from customization.catalog import custom_fields_by_key
from jobs.errors import JobFailed
from jobs.models import Job
from jobs.runner import step
from jobs.services import enqueue
from orgs.models import Membership

UPLOAD_PART_BYTES = 4 * 1024 * 1024
STEP_ROWS = 25_000  # rows a step imports and commits (a chunk of the engine is 2,500)
CSV_FORMAT, JSONL_FORMAT = "csv", "jsonl"
ERROR_COLUMNS = ("error_row", "error_outcome", "error_message")  # after the row's own columns


def async_limits_message() -> str:
    mib = settings.ASYNC_IMPORT_MAX_BODY_BYTES / (1024 * 1024)
    return f"An async import accepts at most {settings.ASYNC_IMPORT_MAX_ROWS:,} rows and {mib:g} MiB."


# --- the web side ---------------------------------------------------------------------------------


class Starter:
    """Who starts an async import: a member (the rows get their scope, as in a synchronous
    import), or staff in the admin (`staff=True`: the whole org, like the admin's other writes)."""

    def __init__(self, org_id: int, user_id: int, staff: bool = False):
        self.org_id, self.user_id, self.staff = org_id, user_id, staff

    @classmethod
    def member(cls, membership: Membership) -> Starter:
        return cls(membership.org_id, membership.user_id)


def start_csv(starter: Starter, options: ImportOptions, parts: Iterable[bytes], attr: str | None) -> Job:
    """An async import of a CSV body given as byte parts; its header is checked now (422)."""
    parts = iter(parts)
    first = next(parts, b"")
    check_csv_header(first, starter.org_id, attr)
    return _start(starter, options, CSV_FORMAT, _chain_first(first, parts))


def start_json(starter: Starter, options: ImportOptions, contacts) -> Job:
    """An async import of a JSON body's `contacts` list (kept as JSON lines)."""
    if not isinstance(contacts, list):
        raise InvalidInput([FieldError("contacts", "wrong_type", "Expected a list of contact objects.")])
    if len(contacts) > settings.ASYNC_IMPORT_MAX_ROWS:
        raise TooLarge(f"Too many rows. {async_limits_message()} Split the file.")
    lines = (json.dumps(item, separators=(",", ":")).encode() + b"\n" for item in contacts)
    return _start(starter, options, JSONL_FORMAT, lines)


def check_csv_header(head: bytes, org_id: int, attr: str | None) -> None:
    """The CSV's header names contact fields, in UTF-8 (the rest is read by the worker)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        text = decoder.decode(head[: 1 << 16], final=False)
    except UnicodeDecodeError as exc:
        raise encoding_error(exc.start, attr)
    CsvRows(text, custom_fields_by_key(org_id), attr)


def _start(starter: Starter, options: ImportOptions, data_format: str, parts: Iterable[bytes]) -> Job:
    params = {"options": options.as_params(), "format": data_format, "staff": starter.staff}
    job = enqueue(starter.org_id, starter.user_id, Job.Kind.IMPORT, params)
    size, number, buffer = 0, 0, bytearray()
    for part in parts:
        size += len(part)
        if size > settings.ASYNC_IMPORT_MAX_BODY_BYTES:
            raise TooLarge(f"The body is too large. {async_limits_message()}")  # rolls the job back
        buffer += part
        while len(buffer) >= UPLOAD_PART_BYTES:
            _store_part(job, number, bytes(buffer[:UPLOAD_PART_BYTES]))
            del buffer[:UPLOAD_PART_BYTES]
            number += 1
    if buffer or number == 0:
        _store_part(job, number, bytes(buffer))
    return job


def _store_part(job: Job, number: int, data: bytes) -> None:
    ImportUpload.objects.create(org_id=job.org_id, job=job, part=number, data=data)


def _chain_first(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def split_bytes(data: bytes, size: int = UPLOAD_PART_BYTES) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size].tobytes()
    if not data:
        yield b""


# --- the worker side ------------------------------------------------------------------------------


class UploadReader(io.RawIOBase):
    """An async import's upload as a byte stream, one part in memory at a time."""

    def __init__(self, job: Job):
        self.job = job
        self.part = 0
        self.buffer = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        if not self.buffer:
            with as_org(self.job.org_id):
                data = (
                    ImportUpload.objects.filter(org_id=self.job.org_id, job_id=self.job.pk, part=self.part)
                    .values_list("data", flat=True)
                    .first()
                )
            if not data:
                return 0
            self.buffer, self.part = memoryview(bytes(data)), self.part + 1
        count = min(len(target), len(self.buffer))
        target[:count] = self.buffer[:count]
        self.buffer = self.buffer[count:]
        return count


def read_rows(job: Job, custom_keys) -> tuple[Iterator[tuple[int, dict | None]], dict[str, None], list[str]]:
    """The upload's numbered rows (streamed); its ignored columns (a JSON upload's fill up as its
    rows are read); its known columns' names (CSV)."""
    stream = io.BufferedReader(UploadReader(job), buffer_size=1 << 20)
    if job.params["format"] == JSONL_FORMAT:
        ignored: dict[str, None] = {}
        lines = io.TextIOWrapper(stream, encoding="utf-8")
        rows = ((number, json_row(json.loads(line), ignored)) for number, line in enumerate(lines, start=1))
        return rows, ignored, []
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        parsed = CsvRows(text, custom_keys)
    except UnicodeDecodeError as exc:
        raise JobFailed(f"The CSV is not valid UTF-8 ({exc.reason}).", "invalid_encoding")
    except InvalidInput as exc:  # the header was checked on upload; a field deleted since can do this
        raise JobFailed(exc.errors[0].detail, exc.errors[0].code)
    names = [name if key is None else f"custom.{key}" for _, name, key in parsed.columns]
    return _decoded(iter(parsed)), dict.fromkeys(parsed.ignored_columns), names


def count_rows(job: Job, custom_keys) -> int:
    """The upload's records (the rows' numbers run to it), read without building rows."""
    stream = io.BufferedReader(UploadReader(job), buffer_size=1 << 20)
    if job.params["format"] == JSONL_FORMAT:
        return sum(1 for _ in stream)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        return sum(1 for _ in _decoded(CsvRows(text, custom_keys).records()))
    except InvalidInput as exc:  # the header was checked on upload; a field deleted since can do this
        raise JobFailed(exc.errors[0].detail, exc.errors[0].code)


def _decoded(rows: Iterator) -> Iterator:
    """Rows, with a decoding or CSV error past the header ending the job with its reason."""
    try:
        yield from rows
    except UnicodeDecodeError as exc:
        raise JobFailed(f"The CSV is not valid UTF-8 after the header ({exc.reason}).", "invalid_encoding")
    except InvalidInput as exc:
        raise JobFailed(exc.errors[0].detail, "malformed_csv")


def run(job: Job) -> None:
    """Import the job's upload, step by step (a resumed job skips the rows already committed)."""
    options = replace(ImportOptions.from_params(job.params["options"]), report="rows")
    with as_org(job.org_id):
        normalizer_for(job)  # fails at once for a creator who left
        custom_keys = custom_fields_by_key(job.org_id)
    if job.progress_total is None:
        total = count_rows(job, custom_keys)
        if total > settings.ASYNC_IMPORT_MAX_ROWS:
            raise JobFailed(f"Too many rows. {async_limits_message()} Split the file.", "too_many_rows")
        with step(job):
            job.progress_total = total
            job.result = _empty_result()
    rows, ignored, columns = read_rows(job, custom_keys)
    if job.params.get("columns") != columns:  # the error file's columns: the CSV's known ones
        job.params["columns"] = columns
        with as_org(job.org_id):
            Job.objects.filter(pk=job.pk).update(params=job.params)
    pending = (row for row in rows if row[0] > job.progress_done)
    while batch := list(islice(pending, STEP_ROWS)):
        with step(job):
            _import_step(job, options, batch)
    with step(job):
        job.progress_done = job.progress_total
        job.result["ignored_columns"] = list(ignored)


def _import_step(job: Job, options: ImportOptions, batch: list) -> None:
    """One step's rows imported, their failures kept for the error file, the journal's `after`."""
    normalizer = normalizer_for(job)
    report = ImportReport(rows=[])
    journal = None if options.dry_run else Journal(job.org_id, job.pk)
    ContactImporter(normalizer, options, journal).run(batch, report)
    given = dict(batch)
    errors: dict[int, list] = {}
    for error in report.errors:
        errors.setdefault(error.row, []).append({"field": error.field, "message": error.message, "value": error.value})
    issues = [
        ImportIssue(
            org_id=job.org_id, job_id=job.pk, row=entry["row"], outcome=entry["outcome"],
            contact_id=entry["contact_id"], matched_on=entry["matched_on"], data=given.get(entry["row"]),
            errors=errors.get(entry["row"], []),
        )
        for entry in report.rows
        if entry["outcome"] in ("failed", "conflict")
    ]  # fmt: skip
    ImportIssue.objects.bulk_create(issues)
    if journal is not None:
        touched = sorted({e["contact_id"] for e in report.rows if e["outcome"] in ("created", "updated")})
        with connection.cursor() as cursor:
            journal.record_after(cursor, touched)
    counts = report.as_dict()
    for name in ("total", "created", "updated", "skipped", "failed", "conflicts"):
        job.result[name] += counts[name]
    job.result["dry_run"] = options.dry_run
    job.error_count += len(issues)
    job.progress_done = batch[-1][0]


def _empty_result() -> dict:
    return {"total": 0, "created": 0, "updated": 0, "skipped": 0, "failed": 0, "conflicts": 0, "ignored_columns": []}


def discard_upload(job: Job) -> None:
    """A finished job's upload is no longer needed (its error file and journal are kept)."""
    ImportUpload.objects.filter(org_id=job.org_id, job_id=job.pk).delete()


# --- the error file -------------------------------------------------------------------------------


def error_rows(job: Job) -> Iterator[list]:
    """The error file: the failed and conflicting rows as given (re-importable once fixed), then
    why (`error_row`, `error_outcome`, `error_message`).

    Read while the response streams, after the request's transaction has ended: in a
    transaction of its own, inside the job's org, by a server-side cursor (constant memory)."""
    with as_org(job.org_id):
        issues = ImportIssue.objects.filter(org_id=job.org_id, job_id=job.pk).order_by("row")
        columns = job.params.get("columns") or _json_columns(issues)
        yield [*columns, *ERROR_COLUMNS]
        for issue in issues.iterator(chunk_size=2000):
            data = issue.data if isinstance(issue.data, dict) else {}
            message = "; ".join(
                f"{error['field']}: {error['message']}" if error["field"] else error["message"]
                for error in issue.errors
            )
            yield [*(_cell(data, column) for column in columns), issue.row, issue.outcome, message]


def _json_columns(issues) -> list[str]:
    keys: dict[str, None] = {}
    for data in issues.values_list("data", flat=True).iterator(chunk_size=2000):
        if isinstance(data, dict):
            keys.update((f"custom.{key}", None) for key in (data.get("custom") or {}))
            keys.update((key, None) for key in data if key in CONTACT_COLUMNS)
    return [c for c in CONTACT_COLUMNS if c in keys] + sorted(k for k in keys if k.startswith("custom."))


def _cell(data: dict, column: str) -> str:
    value = (data.get("custom") or {}).get(column[7:]) if column.startswith("custom.") else data.get(column)
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
