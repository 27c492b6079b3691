"""`POST /contacts/export` and `GET /contacts/export`: a smart list streamed as CSV or JSON lines
(contacts.export). Thin: the selection is the search compiler's, scoped like every list."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation

from contacts.api.smart_list import SmartListRequestSerializer
from contacts.export import FORMATS, check_columns, export_lines
from contacts.models import Contact
from contacts.search import SearchCompiler
from contacts.smart_list import SmartList
from crm.api.serializer_fields import StrictCharField, StrictChoiceField
from crm.api.throttling import SearchRateThrottle, TokenRateThrottle
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import FieldError, InvalidInput
from crm.limits import MAX_ROW_ID

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


class ExportRequestSerializer(SmartListRequestSerializer):
    columns = serializers.ListField(
        child=StrictCharField(),
        required=False,
        min_length=1,
        help_text="`id`, built-in fields (`GET /contacts/fields`) and `custom.<key>`; default: the view's "
        "columns, else all of them.",
    )
    format = StrictChoiceField(FORMATS, required=False, default="csv")


EXPORT_DESCRIPTION = (
    "Every matching contact the caller may see (an assigned-only member: theirs), with no cap, from one "
    "consistent snapshot, streamed in list order (newest first). Give at most one of `query`, `view`, `ids` "
    "(none: every contact); `q` narrows any of them. CSV: a header row of the columns, tags and multi-select "
    "values joined with `;`, and a cell starting with `=`, `+`, `-`, `@`, a tab or CR prefixed with `'` (so "
    'a spreadsheet does not run it). JSON lines: `{"columns": [...]}`, then one object per contact.'
)
CSV_EXAMPLE = "id,name,email,tags,custom.tier\n1207,Ada Lovelace,ada@example.com,vip;webinar,Gold\n88,'=1+1,,,\n"
STREAM = {
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, examples=[OpenApiExample("csv", value=CSV_EXAMPLE)]),
    (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="JSON lines."),
}


class ExportNegotiation(BaseContentNegotiation):
    """`?format=` names the export's format here (DESIGN §4), not one of DRF's renderers (its URL
    override would answer 404 for `csv`). The body streams itself; errors are JSON problems."""

    def select_parser(self, request, parsers):
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class ContactExportView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = Contact
    content_negotiation_class = ExportNegotiation
    throttle_classes = [TokenRateThrottle, SearchRateThrottle]
    serializer_class = ExportRequestSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        summary="Export contacts (a query, a saved view or ids)",
        description=EXPORT_DESCRIPTION,
        request=ExportRequestSerializer,
        responses=STREAM,
        examples=[
            OpenApiExample(
                "a view's contacts, some columns",
                request_only=True,
                value={"view": 3, "columns": ["id", "name", "email", "tags", "custom.tier"], "format": "csv"},
            )
        ],
    )
    def post(self, request):
        body = ExportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._export(body.validated_data, [])

    @extend_schema(
        summary="Export contacts (a saved view, or all)",
        description=EXPORT_DESCRIPTION + " The GET form, for a link: a saved view (or every contact), its columns.",
        parameters=[
            OpenApiParameter(
                "view",
                {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID},
                description="A saved view's id (default: every contact).",
            ),
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS), description="Default `csv`."),
        ],
        responses=STREAM,
    )
    def get(self, request):
        body = ExportRequestSerializer(data=request.query_params)
        body.is_valid(raise_exception=True)
        return self._export(body.validated_data, [])

    def _export(self, given: dict, errors: list[FieldError]) -> StreamingHttpResponse:
        smart_list = SmartList.from_request(given, self.membership, errors)
        registry = SearchCompiler.for_member(self.membership).registry
        columns = check_columns(given.get("columns", smart_list.view_columns), registry, "columns", errors)
        if errors:
            raise InvalidInput(errors)
        selection = smart_list.contacts(self.membership.org, self.membership)
        data_format = given.get("format", "csv")
        response = StreamingHttpResponse(
            export_lines(self.membership.org_id, selection, columns, data_format),
            content_type=CONTENT_TYPES[data_format],
        )
        response["Content-Disposition"] = f'attachment; filename="contacts.{data_format}"'
        return response
