"""`POST /contacts/import`: JSON, raw CSV (`text/csv`, or `application/octet-stream` for clients that
send any file as bytes) or multipart (`file`) bodies, one transaction each."""

from __future__ import annotations

import functools
import io
from dataclasses import replace

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from contacts.api.serializers import ContactSerializer
from contacts.importing import (
    MAX_REPORTED_ERRORS,
    ContactImporter,
    parse_options,
    read_csv,
    read_json_contacts,
)
from contacts.importing import jobs as importing
from contacts.importing.options import DEDUPE_CHOICES, ON_DUPLICATE_CHOICES, REPORT_CHOICES, ImportOptions
from contacts.importing.parsing import CONTACT_COLUMNS
from contacts.models import Contact
from contacts.normalize import ContactNormalizer
from crm.api.idempotency import idempotent
from crm.api.parsers import JSONParser, MultiPartParser
from crm.api.serializer_fields import StrictCharField
from crm.api.throttling import ImportRateThrottle, ProcessSlots, TokenRateThrottle
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import FieldError, InvalidInput, TooLarge
from customization.api.field_values import CustomFieldValuesField
from jobs.api.serializers import JobSerializer


class CSVParser(BaseParser):
    """`text/csv` bodies are handed over as bytes; decoding (UTF-8, BOM) is the importer's job."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""


class OctetStreamCSVParser(CSVParser):
    """The same CSV as raw bytes: what generated clients send for a binary body (openapi-python-client
    has no `text/csv` body type)."""

    media_type = "application/octet-stream"


RAW_CSV_TYPES = (CSVParser.media_type, OctetStreamCSVParser.media_type)
RAW_CSV_SCHEMA = {
    "type": "string",
    "format": "binary",
    "description": "The CSV file's bytes: UTF-8 with or without BOM, a header row, `,` `;` or tab separated.",
}


# --- schema-only serializers ---------------------------------------------------------------------------


class ImportOptionsSerializer(serializers.Serializer):
    def get_fields(self):
        fields = super().get_fields()
        fields["async"] = fields.pop("run_async")  # a Python keyword: named here
        return fields

    run_async = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Run as a job (202 with the job): up to "
        f"{settings.ASYNC_IMPORT_MAX_ROWS:,} rows and {settings.ASYNC_IMPORT_MAX_BODY_BYTES // (1024 * 1024)} MiB, "
        "with progress, cancel, an error file and undo (`/jobs/{id}`).",
    )
    dry_run = serializers.BooleanField(
        required=False,
        default=ImportOptions.dry_run,
        help_text="Validate and report exactly as a real run would; write nothing.",
    )
    dedupe_on = serializers.ChoiceField(
        DEDUPE_CHOICES,
        required=False,
        default=ImportOptions.dedupe_on,
        help_text="Which key finds an existing contact (email wins over phone).",
    )
    on_duplicate = serializers.ChoiceField(
        ON_DUPLICATE_CHOICES,
        required=False,
        default=ImportOptions.on_duplicate,
        help_text="`update` fills the given non-empty fields, unions tags and "
        "merges custom values; `skip` leaves the contact as it is.",
    )
    tags = serializers.ListField(
        child=StrictCharField(max_length=64), required=False, help_text="Tags added to every imported row."
    )
    report = serializers.ChoiceField(
        REPORT_CHOICES,
        required=False,
        default=ImportOptions.report,
        help_text="`rows` adds each row's outcome to the answer (`rows`).",
    )


class ImportContactSerializer(ContactSerializer):
    """One row of a JSON import: a contact's writable fields, as in `POST /contacts`."""

    custom = CustomFieldValuesField(required=False, help_text="Values keyed by custom-field key.")


class ImportJSONSerializer(serializers.Serializer):
    contacts = ImportContactSerializer(many=True, help_text=f"At most {settings.IMPORT_MAX_ROWS:,} rows.")
    options = ImportOptionsSerializer(required=False, allow_null=True)  # null: the defaults


class ImportFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A UTF-8 CSV file (header row of contact fields, `tags`, `custom.<key>`).")


class ImportRowErrorSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Data row number, counting from 1 (the header is not a row).")
    field = StrictCharField(
        allow_null=True,
        help_text="Dotted path of the culprit, e.g. `email`, `custom.plan`, `tags.2`; null for the whole row.",
    )
    message = StrictCharField()
    value = serializers.JSONField(allow_null=True, help_text="The input that failed, as given; null for the whole row.")


class ImportRowOutcomeSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="Data row number, counting from 1.")
    outcome = serializers.ChoiceField(["created", "updated", "skipped", "failed", "conflict"])
    contact_id = serializers.IntegerField(
        allow_null=True, help_text="The contact the row created, updated, skipped or conflicted with."
    )
    matched_on = serializers.ChoiceField(
        ["email", "phone"], allow_null=True, help_text="The key that found an existing contact; null when none did."
    )


class ImportResultSerializer(serializers.Serializer):
    total = serializers.IntegerField(help_text="Rows read.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField(
        help_text="Rows merged into an existing contact or an earlier row that changed something of it."
    )
    skipped = serializers.IntegerField(
        help_text="Matched rows left alone: duplicates under `on_duplicate=skip`, and rows whose values the "
        "contact holds already (nothing of it is written)."
    )
    failed = serializers.IntegerField(help_text="Rows reported in `errors` and not imported.")
    conflicts = serializers.IntegerField(
        help_text="Rows whose phone found a contact with another email under `dedupe_on=phone`: another "
        "person, so nothing was changed (reported in `errors`, field `phone`)."
    )
    errors = ImportRowErrorSerializer(many=True, help_text=f"At most {MAX_REPORTED_ERRORS} entries.")
    errors_truncated = serializers.IntegerField(
        required=False, help_text="How many more errors there were beyond the cap."
    )
    ignored_columns = serializers.ListField(
        child=StrictCharField(), help_text="Unknown columns (CSV) or keys (JSON), ignored for every row."
    )
    dry_run = serializers.BooleanField(help_text="True when nothing was written.")
    rows = ImportRowOutcomeSerializer(many=True, required=False, help_text="Each row's outcome, with `report=rows`.")

    absent_in_responses = ("errors_truncated", "rows")


CSV_EXAMPLE = (
    "name,email,phone,company,tags,custom.plan\r\n"
    "Ada Lovelace,ada@example.com,+44 20 7946 0958,Analytical Engines,vip;webinar,gold\r\n"
    '"Grace Hopper",grace@example.com,,"Navy, US",,\r\n'
)
JSON_EXAMPLE = {
    "contacts": [
        {"name": "Ada Lovelace", "email": "ada@example.com", "tags": ["vip"], "custom": {"plan": "gold"}},
        {"first_name": "Grace", "last_name": "Hopper", "phone": "+1 415 555 2671"},
    ],
    "options": {"dedupe_on": "email_or_phone", "on_duplicate": "update", "dry_run": False, "tags": ["import-2026"]},
}
RESULT_EXAMPLE = {
    "total": 3,
    "created": 1,
    "updated": 1,
    "skipped": 0,
    "failed": 1,
    "conflicts": 0,
    "errors": [{"row": 3, "field": "email", "message": "Enter a valid email address (...).", "value": "ada@"}],
    "ignored_columns": ["favourite_colour"],
    "dry_run": False,
    "rows": [
        {"row": 1, "outcome": "created", "contact_id": 1207, "matched_on": None},
        {"row": 2, "outcome": "updated", "contact_id": 88, "matched_on": "email"},
        {"row": 3, "outcome": "failed", "contact_id": None, "matched_on": None},
    ],
}
SYNC_IMPORTS = ProcessSlots(
    "SYNC_IMPORTS_PER_PROCESS",
    "This server process is running as many synchronous imports as it may; retry shortly, or send the "
    "import with `async=true`.",
)
QUERY_OPTION = "Applies to every body; a JSON body's `options`, when given, take precedence."


class ContactImportView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = Contact
    throttle_classes = [TokenRateThrottle, ImportRateThrottle]
    parser_classes = [JSONParser, CSVParser, OctetStreamCSVParser, MultiPartParser]
    serializer_class = ImportResultSerializer
    error_statuses = ("409", "413")
    request_body_required = True

    @extend_schema(
        summary="Import contacts (JSON, CSV or a CSV upload)",
        description=(
            "Creates and merges contacts in one transaction (or, with `async=true`, as a job of the task queue: "
            "202 with the job; see `GET /jobs/{id}`). Each row is validated like a single create; "
            "a bad row is reported in `errors` and skipped, the good rows land. Rows that share a dedupe key "
            "with each other or with an existing contact are merged as if imported one at a time. "
            f"Limits: {settings.IMPORT_MAX_ROWS:,} rows and {settings.IMPORT_MAX_BODY_BYTES // (1024 * 1024)} MiB "
            f"per request (413 otherwise, nothing written); at most {MAX_REPORTED_ERRORS} errors are listed "
            "(`errors_truncated` counts the rest). CSV: UTF-8 with or without BOM, header row of "
            f"{', '.join(CONTACT_COLUMNS)} and `custom.<key>` columns; `tags` cells split on `;` or `,`. "
            "A raw CSV body is `text/csv`, or `application/octet-stream` (the same bytes; what generated clients "
            "send for a binary body); a CSV upload is the multipart field `file`."
        ),
        request={
            "application/json": ImportJSONSerializer,
            "text/csv": RAW_CSV_SCHEMA,
            "application/octet-stream": RAW_CSV_SCHEMA,
            "multipart/form-data": ImportFileSerializer,
        },
        parameters=[
            OpenApiParameter(
                "async", OpenApiTypes.BOOL, description=f"Run as a job (202); see `options.async`. {QUERY_OPTION}"
            ),
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, description=f"Write nothing. {QUERY_OPTION}"),
            OpenApiParameter(
                "dedupe_on",
                OpenApiTypes.STR,
                enum=DEDUPE_CHOICES,
                description=f"Default `email_or_phone`. {QUERY_OPTION}",
            ),
            OpenApiParameter(
                "on_duplicate",
                OpenApiTypes.STR,
                enum=ON_DUPLICATE_CHOICES,
                description=f"Default `update`. {QUERY_OPTION}",
            ),
            OpenApiParameter(
                "tags",
                OpenApiTypes.STR,
                many=True,
                description=f"Tags added to every row (repeat, or separate by commas). {QUERY_OPTION}",
            ),
            OpenApiParameter(
                "report",
                OpenApiTypes.STR,
                enum=REPORT_CHOICES,
                description=f"`rows`: each row's outcome in the answer. {QUERY_OPTION}",
            ),
        ],
        responses={
            200: OpenApiResponse(
                ImportResultSerializer, examples=[OpenApiExample("report", value=RESULT_EXAMPLE, response_only=True)]
            ),
            202: OpenApiResponse(
                JobSerializer,
                description="With `async=true`: the import job (`Location`: the job). Its header was checked; the "
                "rows are read by a worker. Poll `GET /jobs/{id}`.",
            ),
        },
        examples=[
            OpenApiExample("json", value=JSON_EXAMPLE, request_only=True, media_type="application/json"),
            OpenApiExample("csv", value=CSV_EXAMPLE, request_only=True, media_type="text/csv"),
            OpenApiExample("csv bytes", value=CSV_EXAMPLE, request_only=True, media_type="application/octet-stream"),
        ],
        filters=False,
    )
    @idempotent
    def post(self, request):
        options = parse_options(request.query_params, also_accepted={"format"})  # whatever the body; JSON's win
        if request.content_type.startswith(RAW_CSV_TYPES):
            # A job reads the body in parts (a large one is spooled on disk: crm.api.middleware); an
            # import now takes the bytes the middleware read, not a parser's copy.
            return self._csv(options, (request.stream or io.BytesIO()) if options.run_async else request.body, None)
        if "file" in request.FILES:
            return self._csv(options, request.FILES["file"], "file")
        if request.content_type.startswith("multipart/"):
            raise InvalidInput([FieldError("file", "required", "Upload the CSV in the multipart field `file`.")])
        data = request.data
        if not (isinstance(data, dict) and "contacts" in data):
            raise InvalidInput([FieldError("contacts", "required", 'Send {"contacts": [...]} as JSON, or a CSV.')])
        body_options = data.get("options")
        if isinstance(body_options, dict) and isinstance(body_options.get("tags"), str):
            raise InvalidInput([FieldError("options.tags", "wrong_type", "Expected a list of tag names.")])
        if body_options is not None:
            from_body = parse_options(body_options, "options.")
            asked_async = from_body.run_async if "async" in body_options else options.run_async
            options = replace(from_body, run_async=asked_async)
        if options.run_async:
            return self._accepted(importing.start_json(self._starter(), options, data["contacts"]))
        if len(request.body) > settings.IMPORT_MAX_BODY_BYTES:
            raise TooLarge(
                f"The request body is {len(request.body)} bytes; a synchronous import accepts at most "
                f"{settings.IMPORT_MAX_BODY_BYTES} bytes. Send it with `async=true` (up to "
                f"{settings.ASYNC_IMPORT_MAX_BODY_BYTES // (1024 * 1024)} MiB)."
            )
        normalizer = ContactNormalizer.for_member(self.membership)
        return self._run(normalizer, options, *read_json_contacts(data["contacts"]))

    def _csv(self, options, source, attr: str | None) -> Response:
        """A CSV body (bytes, or a stream to read for a job) or upload (a file): a job, or imported now."""
        if options.run_async:
            if isinstance(source, bytes):
                parts = importing.split_bytes(source)
            elif hasattr(source, "chunks"):  # an upload
                parts = source.chunks(importing.UPLOAD_PART_BYTES)
            else:
                parts = iter(functools.partial(source.read, importing.UPLOAD_PART_BYTES), b"")
            return self._accepted(importing.start_csv(self._starter(), options, parts, attr))
        data = source if isinstance(source, bytes) else source.read()
        normalizer = ContactNormalizer.for_member(self.membership)
        return self._run(normalizer, options, *read_csv(data, normalizer.custom_fields, attr=attr))

    def _run(self, normalizer: ContactNormalizer, options, rows, ignored: list[str]) -> Response:
        with SYNC_IMPORTS.take():
            report = ContactImporter(normalizer, options).run(rows)
        report.ignored_columns = ignored
        return Response(report.as_dict())

    def _starter(self) -> importing.Starter:
        return importing.Starter.member(self.membership)

    def _accepted(self, job) -> Response:
        location = reverse("job-detail", args=[job.pk])
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})
