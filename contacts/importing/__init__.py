"""Bulk contact import, shared by the API (`POST /contacts/import`), the admin and
`manage.py import_contacts`: parsing (`parsing`), options (`options`), the engine (`engine`)."""

from contacts.importing.engine import MAX_REPORTED_ERRORS, ContactImporter, ImportReport, paused_gc
from contacts.importing.options import ImportOptions, parse_options
from contacts.importing.parsing import CsvRows, decode_csv, read_csv, read_json_contacts

__all__ = [
    "MAX_REPORTED_ERRORS",
    "ContactImporter",
    "CsvRows",
    "ImportOptions",
    "ImportReport",
    "decode_csv",
    "parse_options",
    "paused_gc",
    "read_csv",
    "read_json_contacts",
]
