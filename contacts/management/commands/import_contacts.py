"""`manage.py import_contacts ORG_ID FILE.csv`: a system import (no member scope) in batches.

Each batch goes through the same engine as `POST /contacts/import` in its own transaction, so a
file far above the request caps can be loaded; rows already imported by an earlier batch are
matched (and merged) like any existing contact. Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import json
import sys
import time
from itertools import islice

from django.core.management.base import BaseCommand, CommandError

from contacts.importing import ContactImporter, CsvRows, ImportReport, decode_csv, parse_options
from contacts.importing.options import DEDUPE_CHOICES, ON_DUPLICATE_CHOICES
from contacts.normalize import ContactNormalizer
from crm import db_security
from crm.errors import InvalidInput
from orgs.models import Organization


class Command(BaseCommand):
    help = "Import contacts from a UTF-8 CSV file into an organization (same rules as POST /contacts/import)."

    def add_arguments(self, parser):
        parser.add_argument("org_id", type=int)
        parser.add_argument("file", help="Path of the CSV file, or - for stdin.")
        parser.add_argument("--dedupe-on", choices=DEDUPE_CHOICES, default="email_or_phone")
        parser.add_argument("--on-duplicate", choices=ON_DUPLICATE_CHOICES, default="update")
        parser.add_argument("--tags", default="", help="Tags added to every row, separated by commas.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report; write nothing.")
        parser.add_argument("--batch-size", type=int, default=10_000, help="Rows per transaction (default 10000).")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw the progress bar.")

    def handle(self, *args, org_id, file, dedupe_on, on_duplicate, tags, dry_run, batch_size, no_progress, **options):
        org = Organization.objects.filter(pk=org_id).first()
        if org is None:
            raise CommandError(f"No organization with id {org_id}.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            data = sys.stdin.buffer.read() if file == "-" else open(file, "rb").read()  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.")
        try:
            import_options = parse_options(
                {"dedupe_on": dedupe_on, "on_duplicate": on_duplicate, "dry_run": dry_run, "tags": tags}
            )
            with db_security.as_org(org.id):
                normalizer = ContactNormalizer.for_org(org)  # a system write: no member scope
            rows = CsvRows(decode_csv(data), normalizer.custom_fields)
        except InvalidInput as exc:
            raise CommandError("; ".join(e.detail for e in exc.field_errors))

        importer = ContactImporter(normalizer, import_options)
        report = ImportReport(ignored_columns=rows.ignored_columns)
        # The stream itself (call_command's `stderr`, else the process's): self.stderr would color the bar as an error.
        stream = options.get("stderr") or sys.stderr
        progress = None if no_progress else ProgressBar(stream, total_bytes=len(data))
        iterator = iter(rows)
        while batch := list(islice(iterator, batch_size)):
            with db_security.as_org(org.id):  # one transaction per batch, inside the org's row-level policy
                importer.run(batch, report)
            if progress:
                progress.update(report.total, fraction=rows.fraction_read)
        if progress:
            progress.finish(report.total)
        self.stdout.write(json.dumps(report.as_dict()))


class ProgressBar:
    """A plain one-line bar on stderr: `[#####-----]  42%  12,000 rows  3,100 rows/s`."""

    width = 30

    def __init__(self, stream, total_bytes: int):
        self.stream = stream
        self.started = time.monotonic()
        self.enabled = total_bytes > 0

    def update(self, rows: int, fraction: float) -> None:
        if not self.enabled:
            return
        done = int(self.width * fraction)
        rate = rows / max(time.monotonic() - self.started, 1e-6)
        self.stream.write(
            f"\r[{'#' * done}{'-' * (self.width - done)}] {fraction:4.0%}  {rows:,} rows  {rate:,.0f} rows/s"
        )
        self.stream.flush()

    def finish(self, rows: int) -> None:
        self.update(rows, 1.0)
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
