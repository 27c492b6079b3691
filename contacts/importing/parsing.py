"""Turning request bodies into import rows: CSV text and JSON `contacts` lists.

A row is a dict shaped like a single-contact write (`tags` a list, `custom` a dict), so it
goes through `ContactNormalizer.clean` unchanged. Columns/keys the importer does not know
are collected once in `ignored_columns`, never reported per row.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from collections.abc import Collection, Iterator
from typing import TextIO

from django.conf import settings

from contacts.contact_fields import WRITABLE_FIELDS
from contacts.importing.options import split_tags
from crm.errors import FieldError, InvalidInput, TooLarge

CONTACT_COLUMNS = tuple(spec.name for spec in WRITABLE_FIELDS)  # the CSV headers of built-in fields
CUSTOM_PREFIX = "custom."
# A cell may hold long notes; csv's default limit (128 KiB) is kept, it is far above any field's cap.


def limits_message() -> str:
    mib = settings.IMPORT_MAX_BODY_BYTES / (1024 * 1024)
    return f"An import accepts at most {settings.IMPORT_MAX_ROWS:,} rows and {mib:g} MiB per request."


def too_many_rows() -> TooLarge:
    return TooLarge(f"Too many rows. {limits_message()} Split the file.")


def decode_csv(data: bytes, attr: str | None = None) -> str:
    """UTF-8 with or without a BOM; anything else is a 422."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise encoding_error(exc.start, attr)


def encoding_error(position: int, attr: str | None) -> InvalidInput:
    message = f"The CSV is not valid UTF-8 (byte {position}). Save it as UTF-8 and retry."
    return InvalidInput([FieldError(attr, "invalid_encoding", message)])


DELIMITERS = (",", ";", "\t")  # a comma first: it wins a tie
HEADER_SCAN_CHARS = 1 << 16  # where the header row is looked for (not a copy of a 50 MB file)


def known_columns(header: list[str], custom_keys: Collection[str]) -> tuple[list, list[str]]:
    """The header's known columns as (cell index, field, custom key), and the names of the others
    (unknown, a `custom.<key>` with no such field, or a repeat)."""
    columns, ignored, seen = [], [], set()
    for index, raw in enumerate(header):
        name = raw.strip().lower()
        key = name[len(CUSTOM_PREFIX) :] if name.startswith(CUSTOM_PREFIX) else None
        known = name in CONTACT_COLUMNS or (key is not None and key in custom_keys)
        if not known or name in seen:
            ignored.append(raw.strip())
            continue
        seen.add(name)
        columns.append((index, "custom" if key is not None else name, key))
    return columns, ignored


def detect_delimiter(text: str, custom_keys: Collection[str]) -> str:
    """The delimiter that makes the header row name the most known columns: `,`, `;` (Excel's in
    many locales) or a tab."""

    head = text[:HEADER_SCAN_CHARS]

    def known(delimiter: str) -> int:
        try:
            header = next(csv.reader(io.StringIO(head, newline=""), delimiter=delimiter), [])
        except csv.Error:
            return 0
        return len(known_columns(header, custom_keys)[0])

    return max(DELIMITERS, key=known)  # max keeps the first of equals


class CsvRows:
    """Rows of a CSV with a header row, from a text or a text stream (an async import's upload,
    read part by part: never the whole file in memory). Iterate for row dicts; blank lines are
    skipped.

    `custom.<key>` columns whose key is not one of `custom_keys` are ignored like unknown columns.
    """

    def __init__(self, text: str | TextIO, custom_keys: Collection[str], attr: str | None = None):
        self.attr = attr
        self._source = io.StringIO(text, newline="") if isinstance(text, str) else text
        self._length = max(1, len(text)) if isinstance(text, str) else None
        head = self._source.read(HEADER_SCAN_CHARS)
        head += self._source.readline()  # the rest of a line the scan cut
        self.delimiter = detect_delimiter(head, custom_keys)
        self._head = io.StringIO(head, newline="")
        self._reader = csv.reader(itertools.chain(self._head, self._source), delimiter=self.delimiter)
        header = self._next()
        if header is None:
            raise InvalidInput([FieldError(attr, "empty_csv", "The CSV has no header row.")])
        # (cell index, field, custom key) of each known column; the others, by their header
        self.columns, self.ignored_columns = known_columns(header, custom_keys)
        if not self.columns:  # not a contacts CSV at all (or the wrong encoding)
            shown = ", ".join(repr(cell.strip()) for cell in header[:5])
            raise InvalidInput(
                [
                    FieldError(
                        attr,
                        "no_known_columns",
                        "The header row names no contact field. Expected a header row of contact fields "
                        f"({', '.join(CONTACT_COLUMNS)}) and `custom.<key>` columns, separated by a comma, "
                        f"a semicolon or a tab; it reads: {shown}.",
                    )
                ]
            )

    @property
    def fraction_read(self) -> float:
        """How much of a text (not a stream) the reader has consumed, 0–1 (for progress bars)."""
        if self._length is None:
            return 0.0
        return min(1.0, self._source.tell() / self._length)

    def _next(self, skip_blank: bool = True) -> list[str] | None:
        try:
            while True:
                cells = next(self._reader)
                if not skip_blank or any(cell.strip() for cell in cells):
                    return cells
        except StopIteration:
            return None
        except csv.Error as exc:
            raise InvalidInput(
                [FieldError(self.attr, "malformed_csv", f"Unreadable CSV near line {self._reader.line_num}: {exc}.")]
            )

    def records(self) -> Iterator[list[str]]:
        """The records after the header as cells, blank ones too (counting them is cheap)."""
        while (cells := self._next(skip_blank=False)) is not None:
            yield cells

    def __iter__(self) -> Iterator[tuple[int, dict]]:
        """(row number, row) pairs. Every record after the header counts for the numbering; records
        whose cells are all empty (spreadsheet padding) are not imported and not reported."""
        number = 0
        while (cells := self._next(skip_blank=False)) is not None:
            number += 1
            if not any(cell.strip() for cell in cells):
                continue
            row: dict = {}
            for index, name, key in self.columns:
                if index >= len(cells):
                    continue
                value = cells[index]
                if key is not None:
                    row.setdefault("custom", {})[key] = value
                elif name == "tags":
                    row["tags"] = split_tags(value)
                else:
                    row[name] = value
            yield number, row


def read_csv(
    data: bytes, custom_keys: Collection[str], attr: str | None = None, max_rows: int | None = None
) -> tuple[Iterator[tuple[int, dict]], list[str]]:
    """The numbered rows of a CSV body, read as they are consumed (no decoded copy of the file,
    no list of its rows: memory stays near the body's own size), and its ignored columns.
    Past `max_rows` the iteration raises a 413 (the import's transaction writes nothing)."""
    max_rows = settings.IMPORT_MAX_ROWS if max_rows is None else max_rows
    check_utf8(data, attr)
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    parsed = CsvRows(text, custom_keys, attr)
    return _at_most(parsed, max_rows), parsed.ignored_columns


def _at_most(rows, max_rows: int) -> Iterator[tuple[int, dict]]:
    for count, row in enumerate(rows, start=1):
        if count > max_rows:
            raise too_many_rows()
        yield row


def check_utf8(data: bytes, attr: str | None = None, slice_bytes: int = 1 << 20) -> None:
    """UTF-8 (with or without a BOM), checked slice by slice without keeping the text; else a 422."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    for start in range(0, len(view), slice_bytes):
        try:
            decoder.decode(view[start : start + slice_bytes], final=start + slice_bytes >= len(view))
        except UnicodeDecodeError as exc:
            raise encoding_error(start + exc.start, attr)


def read_json_contacts(contacts, max_rows: int | None = None) -> tuple[list[tuple[int, dict | None]], list[str]]:
    """The `contacts` list of a JSON body. Items that are not objects become None (a row error)."""
    max_rows = settings.IMPORT_MAX_ROWS if max_rows is None else max_rows
    if not isinstance(contacts, list):
        raise InvalidInput([FieldError("contacts", "wrong_type", "Expected a list of contact objects.")])
    if len(contacts) > max_rows:
        raise too_many_rows()
    ignored: dict[str, None] = {}
    rows = [(number, json_row(item, ignored)) for number, item in enumerate(contacts, start=1)]
    return rows, list(ignored)


def json_row(item, ignored: dict[str, None]) -> dict | None:
    """One item of a JSON `contacts` list as a row (None if it is not an object: a row error);
    keys the importer does not know are added to `ignored`."""
    if not isinstance(item, dict):
        return None
    row = {}
    for key, value in item.items():
        if key in CONTACT_COLUMNS or key == "custom":
            row[key] = split_tags(value) if key == "tags" and isinstance(value, str) else value
        else:
            ignored[key] = None
    return row
