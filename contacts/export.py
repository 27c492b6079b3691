"""Export of a smart list (DESIGN §4 "Actions on a smart list"): every matching contact the
caller may see, streamed as CSV or JSON lines, from one consistent snapshot, in constant memory.

PostgreSQL writes the file: one `COPY (SELECT …) TO STDOUT` of the search compiler's selection
(scoped, in list order), each cell rendered in SQL (`_csv_cell`, `_json_value`), each contact's
tags and custom values read by its key in a LATERAL subquery. One statement is one snapshot;
rows arrive as PostgreSQL produces them and are passed on in pieces of SEND_BYTES, so memory
stays flat whatever the size. It runs in a transaction of its own inside the org (the response
streams after the request's transaction has ended); a client that goes away closes the
generator, which cancels the COPY (psycopg does on leaving its block early) and rolls back.

A JSON line is built as text in SQL too, and COPY is asked for CSV with a delimiter and a quote
character that JSON never holds raw (PostgreSQL's JSON escapes every control character), so
each line passes through untouched.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction

from contacts.contact_fields import CONTACT_FIELDS, FIELDS_BY_NAME
from contacts.models import MULTI_SELECT, ContactTag, FieldValue
from contacts.search.fields import FieldRegistry
from crm.db_security import as_org
from crm.errors import FieldError
from customization.catalog import custom_fields_by_key
from customization.models import Tag

FORMATS = ("csv", "jsonl")
ID_COLUMN = "id"
LIST_ORDER = ("-created_at", "-id")
SEND_BYTES = 256 * 1024  # passed on at a time (COPY sends one message per row)
# A spreadsheet would run a cell starting with one of these: = + - @ tab CR.
FORMULA_STARTS_SQL = "'=', '+', '-', '@', E'\\t', E'\\r'"
# An instant as Python's isoformat() writes it in UTC: microseconds only when there are some
# (`%%`: the COPY has parameters).
ISO_SQL = (
    "to_char({v} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN "
    "extract(microseconds FROM {v})::bigint %% 1000000 = 0 THEN '' ELSE to_char({v} AT TIME ZONE 'UTC', '.US') END "
    "|| '+00:00'"
)
JSON_LINES_OPTIONS = "FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01'"  # neither is ever raw in JSON text
ROW_COLUMNS = ("pk", *(field.column for field in CONTACT_FIELDS if field.column))  # read of each contact row
ROW_ALIASES = ("id", *ROW_COLUMNS[1:])
TAGS, TAG_CATALOG, VALUES = ContactTag._meta.db_table, Tag._meta.db_table, FieldValue._meta.db_table


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


# --- the SQL of each cell ------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One export column: its raw value in SQL, over the selection's row `s` and the contact's
    LATERAL values `x`, and its kind (how a cell shows it)."""

    name: str
    value: str
    kind: str  # text | boolean | datetime | number | list (tags, multi-select) | custom (one JSON value)
    field_id: int | None = None  # a custom field's


def export_columns(org_id: int, names: list[str]) -> list[Column]:
    fields = custom_fields_by_key(org_id)
    columns = []
    for name in names:
        if name == ID_COLUMN:
            columns.append(Column(name, "s.id", "number"))
        elif name == "tags":
            columns.append(Column(name, "x.tags", "list"))
        elif name.startswith("custom."):
            field = fields[name[len("custom.") :]]
            kind = "list" if field.data_type == MULTI_SELECT else "custom"
            columns.append(Column(name, f"x.f{field.pk}", kind, field.pk))
        else:
            spec = FIELDS_BY_NAME[name]
            kind = {"boolean": "boolean", "datetime": "datetime", "user": "number"}.get(spec.type, "text")
            columns.append(Column(name, f"s.{spec.column}", kind))
    return columns


def _lateral(org_id: int, columns: list[Column], data_format: str) -> str:
    """Each contact's tags (names in code point order, as Python sorts) and named custom values
    (a multi-select's options in their order), read by its key: as text joined with `;` for CSV,
    as jsonb for JSON lines. `OFFSET 0` keeps the subquery whole, so each value is read once per
    contact (pulled up into the cells, it ran once per mention)."""
    as_text = data_format == "csv"
    parts = []
    for column in columns:
        if column.name == "tags":
            order = 'ORDER BY t.name COLLATE "C"'
            names = f"string_agg(t.name, ';' {order})" if as_text else f"jsonb_agg(t.name {order})"
            parts.append(
                f"(SELECT {names} FROM {TAGS} ct JOIN {TAG_CATALOG} t ON t.org_id = ct.org_id AND t.id = ct.tag_id "
                f"WHERE ct.org_id = {org_id} AND ct.contact_id = s.id) AS tags"
            )
        elif column.field_id is not None:
            if as_text:
                value = "string_agg(fv.value #>> '{}', ';' ORDER BY fv.position)"
            elif column.kind == "list":
                value = "jsonb_agg(fv.value ORDER BY fv.position)"
            else:
                value = "(array_agg(fv.value))[1]"
            parts.append(
                f"(SELECT {value} FROM {VALUES} fv WHERE fv.org_id = {org_id} AND fv.contact_id = s.id "
                f"AND fv.field_id = {column.field_id}) AS f{column.field_id}"
            )
    return ", ".join(parts) or "NULL AS nothing"


def _text_cell(text: str) -> str:
    """A text cell: empty as nothing (unquoted, as Python's csv writes it); one that starts like a
    formula gets a leading `'`."""
    return (
        f"CASE WHEN {text} = '' THEN NULL WHEN left({text}, 1) IN ({FORMULA_STARTS_SQL}) THEN '''' || {text} "
        f"ELSE {text} END"
    )


def _csv_cell(column: Column) -> str:
    value = column.value
    if column.kind == "number":
        return f"{value}::text"
    if column.kind == "boolean":
        return f"CASE WHEN {value} THEN 'true' ELSE 'false' END"
    if column.kind == "datetime":
        return ISO_SQL.format(v=value)
    return _text_cell(value)  # text, and tags and custom values (text already: `_lateral`)


def _json_value(column: Column) -> str:
    """The column's value as JSON text, as the API gives it (tags and multi-selects as lists)."""
    if column.kind == "datetime":
        return f"COALESCE(to_json({ISO_SQL.format(v=column.value)})::text, 'null')"
    if column.kind == "list":  # no tags are [], an unset custom value null (as in the API)
        return f"COALESCE({column.value}::text, '{'null' if column.field_id else '[]'}')"
    return f"COALESCE(to_json({column.value})::text, 'null')"


def _json_key(name: str) -> str:
    return "'" + json.dumps(name).replace("'", "''") + "'"


def export_query(org_id: int, rows, columns: list[Column], data_format: str) -> tuple[str, list] | None:
    """The COPY's SELECT: the selection's rows (its built-in columns, in list order), each
    contact's LATERAL values, and the cells of `data_format`; None when Django knows the
    selection is empty (it has no SQL for that)."""
    try:
        sql, params = rows.order_by(*LIST_ORDER).values_list(*ROW_COLUMNS).query.sql_with_params()
    except EmptyResultSet:
        return None
    if data_format == "jsonl":
        pairs = " || ',' || ".join(f"{_json_key(column.name)} || ':' || {_json_value(column)}" for column in columns)
        cells = f"'{{' || {pairs} || '}}'"
    else:
        cells = ", ".join(_csv_cell(column) for column in columns)
    query = (
        f"SELECT {cells} FROM ({sql}) AS s({', '.join(ROW_ALIASES)}) "
        f"CROSS JOIN LATERAL (SELECT {_lateral(org_id, columns, data_format)} OFFSET 0) AS x "
        "ORDER BY s.created_at DESC, s.id DESC"
    )
    return query, list(params)


# --- the stream -----------------------------------------------------------------------------------


def export_lines(org_id: int, rows, columns: list[str], data_format: str) -> Iterator[bytes]:
    """The export, in pieces: a header (CSV) or a first object naming the columns (JSON lines),
    then one line per contact of `rows` (a scoped queryset; the list's order is applied)."""
    with transaction.atomic(), as_org(org_id):
        select = export_query(org_id, rows, export_columns(org_id, columns), data_format)
        yield _header(columns, data_format).encode()
        if select is None:
            return
        query, params = select
        options = "FORMAT csv" if data_format == "csv" else JSON_LINES_OPTIONS
        statement = f"COPY ({query}) TO STDOUT ({options})"
        with connection.connection.cursor() as cursor, cursor.copy(statement, params) as copy:
            piece = bytearray()
            for block in copy:
                piece += block
                if len(piece) >= SEND_BYTES:
                    yield bytes(piece)
                    piece.clear()
            if piece:
                yield bytes(piece)


def _header(columns: list[str], data_format: str) -> str:
    if data_format == "jsonl":
        return json.dumps({"columns": columns}) + "\n"
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(columns)
    return buffer.getvalue()
