"""`GET /contacts` paging: limit/offset as everywhere, plus a keyset `cursor` and `count` modes."""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from contacts.paging import COUNT_MODES, Selection, parse_count_mode, read_page
from crm.api.pagination import LimitOffsetPagination
from crm.errors import FieldError, InvalidInput


class ContactPagination(LimitOffsetPagination):
    cursor_query_param = "cursor"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        self.count_mode = parse_count_mode(request.query_params.get("count"))
        cursor = request.query_params.get(self.cursor_query_param)
        order_by = request.contacts_order_by  # the list's sort, as ContactFilterSet applied it
        if cursor and self.offset:
            raise InvalidInput([FieldError("cursor", "cursor_with_offset", "Use either cursor or offset, not both.")])
        filter_params = set(request.query_params) - {"limit", "offset", "cursor", "count", "ordering"}
        narrow = getattr(request, "contacts_q_index", None)  # `q`'s index form, set by ContactFilterSet.filter_q
        selection = Selection.of(queryset, has_filter=bool(filter_params), narrow=narrow)
        if (
            filter_params == {"tag"}
            and order_by == ["-created_at", "-id"]
            and not request.membership.sees_only_assigned
        ):
            selection.side = getattr(request, "contacts_side", None)  # set by ContactFilterSet.filter_tags
        if filter_params == {"q"} and not request.membership.sees_only_assigned:
            selection.counter = getattr(request, "contacts_q_count", None)  # set by ContactFilterSet.filter_q
        # The queryset is sorted already (ContactFilterSet), and its selection has no arms to sort.
        page = read_page(selection, lambda rows: rows, order_by, self.count_mode, self.limit, self.offset, cursor)
        self.count, self.next_cursor = page.count, page.next_cursor
        self.cursor_mode = bool(cursor)
        return page.rows

    def get_next_link(self):
        if self.cursor_mode or self.count is None:
            if self.next_cursor is None:
                return None
            url = remove_query_param(self.request.build_absolute_uri(), self.offset_query_param)
            return replace_query_param(url, self.cursor_query_param, self.next_cursor)
        return super().get_next_link()

    def get_previous_link(self):
        return None if self.cursor_mode else super().get_previous_link()

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.count,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "next_cursor": self.next_cursor,
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        envelope = super().get_paginated_response_schema(schema)
        envelope["properties"]["count"]["nullable"] = True
        envelope["properties"]["count"]["description"] = "Per `count`: exact, an estimate, or null."
        envelope["properties"]["next_cursor"] = {
            "type": "string",
            "nullable": True,
            "description": "Pass as `cursor` to get the next page (keyset paging; fast at any depth); "
            "null when this page is not full.",
        }
        envelope["required"].append("next_cursor")
        return envelope

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "`next_cursor` of the previous page. Not combinable with offset.",
            },
            {
                "name": "count",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": list(COUNT_MODES), "default": "exact"},
                "description": "exact (default); estimate (exact up to 10,000, above that scaled up from a "
                "fixed sample of the org's own contacts: cheaper, approximate); or none.",
            },
        ]
