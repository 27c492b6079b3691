"""Export of a smart list (DESIGN §4 "Actions on a smart list"): every matching contact the
caller may see, streamed as CSV or JSON lines, from one consistent snapshot, in constant memory.

The rows are read by a server-side cursor in chunks, each chunk's tags and custom values in one
statement (`attach_tags_and_custom`), all in one REPEATABLE READ transaction of its own inside
the org (the response streams after the request's transaction has ended). A client that goes
away closes the generator, which rolls that transaction back and closes the cursor.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from itertools import islice

from django.db import connection, transaction

from contacts.models import attach_tags_and_custom
from contacts.search.fields import BUILTIN_FIELDS, FieldRegistry
from crm.db_security import as_org
from crm.errors import FieldError

FORMATS = ("csv", "jsonl")
ID_COLUMN = "id"
CHUNK_ROWS = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet would run such a cell


def known_columns(registry: FieldRegistry) -> list[str]:
    """Every column an export may name: `id`, the built-in fields, `custom.<key>` of the org's fields."""
    return [ID_COLUMN, *(field.name for field in registry.all())]


def check_columns(raw, registry: FieldRegistry, attr: str, errors: list[FieldError]) -> list[str]:
    """The requested columns (default: all), each known; errors name the bad ones."""
    known = known_columns(registry)
    if raw is None:
        return known
    if not isinstance(raw, list) or not raw or not all(isinstance(column, str) for column in raw):
        errors.append(FieldError(attr, "wrong_type", "Expected a non-empty list of column names."))
        return []
    allowed = set(known)
    for index, column in enumerate(raw):
        if column not in allowed:
            errors.append(FieldError(f"{attr}.{index}", "unknown_column", f"Unknown column {column!r}."))
    return list(dict.fromkeys(raw))


def cell_value(contact, column: str):
    """A contact's value for a column, as JSON would carry it."""
    if column == ID_COLUMN:
        return contact.pk
    if column == "tags":
        return contact.tags
    if column.startswith("custom."):
        return contact.custom.get(column[len("custom.") :])
    value = getattr(contact, BUILTIN_FIELDS[column].column)
    return value.isoformat() if isinstance(value, dt.datetime) else value


def csv_cell(value) -> str:
    """A value as a CSV cell: lists joined with `;`, booleans as true/false, and a leading `'`
    before what a spreadsheet would take for a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        value = ";".join(str(item) for item in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_lines(org_id: int, rows, columns: list[str], data_format: str) -> Iterator[str]:
    """The export, line by line: a header (CSV) or a first object naming the columns (JSON lines),
    then one line per contact of `rows` (a scoped, ordered queryset, evaluated here)."""
    own_transaction = not connection.in_atomic_block  # (tests run inside one already)
    with transaction.atomic():
        if own_transaction:  # its first statement: every later read sees the snapshot of the first
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with as_org(org_id):
            yield _header(columns, data_format)
            contacts = rows.iterator(chunk_size=CHUNK_ROWS)
            while chunk := list(islice(contacts, CHUNK_ROWS)):
                attach_tags_and_custom(chunk)
                for contact in chunk:
                    yield _row(columns, [cell_value(contact, column) for column in columns], data_format)


def _header(columns: list[str], data_format: str) -> str:
    if data_format == "jsonl":
        return json.dumps({"columns": columns}) + "\n"
    return _csv_line(columns)


def _row(columns: list[str], values: list, data_format: str) -> str:
    if data_format == "jsonl":
        return json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False, default=str) + "\n"
    return _csv_line([csv_cell(value) for value in values])


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()
