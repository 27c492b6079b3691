"""Bulk contact import, shared by the API (`POST /contacts/import`), the admin and
`manage.py import_contacts`: parsing (`parsing`), options (`options`), the engine (`engine`,
which runs `plan`, `lookup`, `stage` and `write` chunk by chunk) and its report (`report`)."""

from contacts.importing.engine import ContactImporter
from contacts.importing.options import ImportOptions, parse_options
from contacts.importing.parsing import CsvRows, decode_csv, read_csv, read_json_contacts
from contacts.importing.report import MAX_REPORTED_ERRORS, ImportReport

__all__ = [
    "MAX_REPORTED_ERRORS",
    "ContactImporter",
    "CsvRows",
    "ImportOptions",
    "ImportReport",
    "decode_csv",
    "parse_options",
    "read_csv",
    "read_json_contacts",
]
