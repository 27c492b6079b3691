"""Export of a smart list (DESIGN §4 "Actions on a smart list"): every matching contact the
caller may see, streamed as CSV or JSON lines, from one consistent snapshot, in constant memory.

The rows are read by a server-side cursor in chunks (as value tuples: no model instances), each
chunk's tags and custom values in one statement (`tags_and_custom`), all in one REPEATABLE READ
transaction of its own inside the org (the response streams after the request's transaction has
ended). A client that goes away closes the generator, which rolls that transaction back and
closes the cursor.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from itertools import islice

from django.db import connection, transaction

from contacts.contact_fields import CONTACT_FIELDS, FIELDS_BY_NAME
from contacts.models import tags_and_custom
from contacts.search.fields import FieldRegistry
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


def cell_reader(column: str):
    """How a column's value is read from a contact's row (`values_list` of `row_columns`, with its
    tags and custom values `extra`), as JSON would carry it."""
    if column == ID_COLUMN:
        return lambda row, extra: row[0]
    if column == "tags":
        return lambda row, extra: extra[0]
    if column.startswith("custom."):
        key = column[len("custom.") :]
        return lambda row, extra: extra[1].get(key)
    index = 1 + BUILT_IN_COLUMNS.index(FIELDS_BY_NAME[column].column)
    return lambda row, extra: row[index].isoformat() if isinstance(row[index], dt.datetime) else row[index]


BUILT_IN_COLUMNS = tuple(field.column for field in CONTACT_FIELDS if field.column)
ROW_COLUMNS = ("pk", *BUILT_IN_COLUMNS)  # what the export reads of each contact row
NOTHING = ([], {})


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
    """The export as text: a header (CSV) or a first object naming the columns (JSON lines), then
    one line per contact of `rows` (a scoped, ordered queryset, evaluated here). Each chunk of
    CHUNK_ROWS contacts is one piece of text: the server sends what it is given piece by piece,
    and one send per line cost more than the lines themselves."""
    own_transaction = not connection.in_atomic_block  # (tests run inside one already)
    with transaction.atomic():
        if own_transaction:  # its first statement: every later read sees the snapshot of the first
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with as_org(org_id):
            yield _header(columns, data_format)
            readers = [cell_reader(column) for column in columns]
            contacts = rows.values_list(*ROW_COLUMNS).iterator(chunk_size=CHUNK_ROWS)
            while chunk := list(islice(contacts, CHUNK_ROWS)):
                found = tags_and_custom([org_id], [row[0] for row in chunk])
                values = [[read(row, found.get(str(row[0]), NOTHING)) for read in readers] for row in chunk]
                yield _csv_lines(values) if data_format == "csv" else "".join(_json_line(columns, v) for v in values)


def _header(columns: list[str], data_format: str) -> str:
    if data_format == "jsonl":
        return json.dumps({"columns": columns}) + "\n"
    return _csv_lines([columns], raw=True)


def _json_line(columns: list[str], values: list) -> str:
    return json.dumps(dict(zip(columns, values, strict=True)), ensure_ascii=False, default=str) + "\n"


def _csv_lines(rows, raw: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerows(rows if raw else ([csv_cell(value) for value in values] for values in rows))
    return buffer.getvalue()
