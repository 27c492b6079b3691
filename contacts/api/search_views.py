"""Smart-list search, the field catalog and saved views: thin views over `contacts.search`."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from contacts.api.search_schema import (
    SEARCH_EXAMPLES,
    VIEWS_EXAMPLE,
    FieldCatalogSerializer,
    SavedViewsSerializer,
    SearchResponseSerializer,
    SearchSerializer,
)
from contacts.api.serializers import ContactSerializer
from contacts.models import Contact, SmartListView
from contacts.paging import read_page
from contacts.search import FieldRegistry, SearchCompiler
from contacts.search.saved_views import etag_of, list_views, replace_views
from crm.api.throttling import SearchRateThrottle, TokenRateThrottle
from crm.api.viewsets import OrgScopedViewMixin
from customization.field_types import OPERATORS_BY_KIND, FilterKind

TEXT_OPERATORS = list(OPERATORS_BY_KIND[FilterKind.TEXT])  # the examples show what the registry says

ETAG_HEADER = OpenApiParameter(
    "ETag",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    response=True,
    description="Version of the whole set of views; send it back as If-Match.",
)


class _OrgAPIView(OrgScopedViewMixin, GenericAPIView):
    pagination_class = None
    filter_backends: list = []


class ContactSearchView(_OrgAPIView):
    queryset_model = Contact
    throttle_classes = [TokenRateThrottle, SearchRateThrottle]
    serializer_class = SearchResponseSerializer

    @extend_schema(
        summary="Search contacts (smart list)",
        description=(
            "OR across groups, AND within a group, `q` AND-ed on top; no groups = every contact. "
            "Caps: 20 groups, 100 conditions, q ≤ 200 chars, limit 1–200, offset ≥ 0, 5 sort keys. "
            "Any invalid part is a 422 whose `errors[].attr` points at it, e.g. "
            "`query.groups.1.conditions.0.value`. The filter language: docs/filters.md."
        ),
        request=SearchSerializer,
        responses={200: SearchResponseSerializer},
        examples=SEARCH_EXAMPLES,
    )
    def post(self, request):
        plan = SearchCompiler.for_member(self.membership).compile_request(request.data)
        selection = plan.selection(self.get_queryset(), whole_org=not self.membership.sees_only_assigned)
        page = read_page(
            selection, plan.sort.apply, plan.sort.order_by, plan.count, plan.limit, plan.offset, plan.cursor
        )
        return Response(
            {
                "count": page.count,
                "limit": plan.limit,
                "offset": plan.offset,
                "next_cursor": page.next_cursor,
                "results": ContactSerializer(page.rows, many=True).data,
            }
        )


class ContactFieldsView(_OrgAPIView):
    queryset_model = Contact
    serializer_class = FieldCatalogSerializer

    @extend_schema(
        summary="Filterable and sortable fields",
        description="Every field a smart-list condition or sort may name: built-ins and `custom.<key>`, "
        "with type, label, operators and (select types) options.",
        responses={200: FieldCatalogSerializer},
        examples=[
            OpenApiExample(
                "fields",
                response_only=True,
                value={
                    "fields": [
                        {
                            "field": "email",
                            "label": "Email",
                            "type": "email",
                            "kind": "text",
                            "operators": TEXT_OPERATORS,
                            "sortable": True,
                        },
                        {
                            "field": "custom.tier",
                            "label": "Tier",
                            "type": "single_select",
                            "kind": "text",
                            "operators": TEXT_OPERATORS,
                            "sortable": True,
                            "options": ["Gold", "Silver"],
                        },
                    ]
                },
            )
        ],
    )
    def get(self, request):
        return Response({"fields": FieldRegistry.for_org(self.membership.org_id).catalog()})


class SavedViewsView(_OrgAPIView):
    queryset_model = SmartListView
    serializer_class = SavedViewsSerializer
    http_method_names = ["get", "put", "head", "options"]
    error_statuses = ("412",)

    @extend_schema(
        summary="The org's saved views",
        responses={200: SavedViewsSerializer},
        parameters=[ETAG_HEADER],
        examples=[VIEWS_EXAMPLE],
    )
    def get(self, request):
        views = list_views(self.membership)
        return Response({"views": views}, headers={"ETag": etag_of(views)})

    @extend_schema(
        summary="Replace the org's saved views",
        description=(
            "Replaces the whole set atomically: entries with an `id` are kept and updated, entries without "
            "are created, views not listed are deleted. Each query is validated like a search (422, attr "
            "`views.2.query.groups.0.conditions.0.field`). With `If-Match`, a set changed since that ETag "
            "gets 412 and nothing changes."
        ),
        request=SavedViewsSerializer,
        responses={200: SavedViewsSerializer},
        parameters=[
            ETAG_HEADER,
            OpenApiParameter(
                "If-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description="The ETag of the set this replacement was based on.",
            ),
        ],
        examples=[VIEWS_EXAMPLE],
    )
    def put(self, request):
        views = replace_views(self.membership, request.data, request.headers.get("If-Match"))
        return Response({"views": views}, headers={"ETag": etag_of(views)})
