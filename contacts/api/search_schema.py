"""OpenAPI components of the filter language (documentation only: the compiler parses bodies).

Component names (request bodies get a `Request` suffix): Condition, Group, Query, Sort,
SearchRequest, SearchResponse, FieldCatalog, SavedView, SavedViews. Operator names and caps
come from the same registries the compiler uses.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema_field
from rest_framework import serializers

from contacts.api.serializers import ContactSerializer
from contacts.search.fields import BUILTIN_FIELDS
from contacts.search.operators import ALL_OPERATORS
from crm.api.serializer_fields import StrictCharField
from crm.limits import (
    COUNT_MODES,
    DEFAULT_LIMIT,
    MAX_CONDITIONS,
    MAX_CURSOR_LENGTH,
    MAX_GROUPS,
    MAX_LIMIT,
    MAX_LIST_ITEMS,
    MAX_NAME_LENGTH,
    MAX_OFFSET,
    MAX_Q_LENGTH,
    MAX_SORT_KEYS,
    MAX_SPAN_AMOUNT,
    MAX_VALUE_TEXT,
    MAX_VIEW_NAME,
    MAX_VIEWS,
    SORT_DIRECTIONS,
    SPAN_UNITS,
)
from customization.field_types import OPERATORS_BY_KIND

FIELD_HELP = (
    f"A built-in field ({', '.join(BUILTIN_FIELDS)}), `custom.<key>` of one of the org's custom fields, or "
    "`view` (membership of saved views, by id). See GET /contacts/fields for the fields, their types and operators."
)

SCALAR_SCHEMAS = [
    {
        "type": "string",
        "maxLength": MAX_VALUE_TEXT,
        "description": "Text, tag, option, ISO date (`YYYY-MM-DD`) or ISO 8601 datetime.",
    },
    {"type": "number", "description": "Custom number fields; `assigned_to` takes integer user ids."},
    {"type": "boolean", "description": "`dnc` and custom boolean fields."},
]

VALUE_SCHEMA = {
    "description": (
        "Depends on the field's type and the operator: a scalar for eq/neq/gt/gte/lt/lte/contains/not_contains/"
        "starts_with/ends_with; a non-empty list (≤ 100) for in/not_in/contains_any/contains_all (saved view ids "
        "for `view`); `[lo, hi]` for between (both ends included); `{amount, unit}` for within_last/more_than_ago/"
        "within_next/more_than_ahead; absent for is_empty/is_not_empty/today."
    ),
    "oneOf": [
        *SCALAR_SCHEMAS,
        {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_LIST_ITEMS,
            "items": {"oneOf": [{"type": "string"}, {"type": "number"}]},
            "description": "List of values, or [lo, hi] for between.",
        },
        {
            "type": "object",
            "title": "RelativeSpan",
            "required": ["amount", "unit"],
            "additionalProperties": False,
            "properties": {
                "amount": {"type": "integer", "minimum": 1, "maximum": MAX_SPAN_AMOUNT},
                "unit": {"type": "string", "enum": list(SPAN_UNITS)},
            },
        },
    ],
}


@extend_schema_field(VALUE_SCHEMA)
class ConditionValueField(serializers.JSONField):
    pass


class ConditionSerializer(serializers.Serializer):
    field = StrictCharField(max_length=MAX_NAME_LENGTH, help_text=FIELD_HELP)
    op = serializers.ChoiceField(choices=ALL_OPERATORS, help_text="Must be valid for the field's type.")
    value = ConditionValueField(required=False)

    absent_in_responses = ("value",)  # is_empty, is_not_empty and today take none


class GroupSerializer(serializers.Serializer):
    conditions = ConditionSerializer(many=True, min_length=1, max_length=MAX_CONDITIONS, help_text="AND-ed together.")


class QuerySerializer(serializers.Serializer):
    groups = GroupSerializer(
        many=True,
        max_length=MAX_GROUPS,
        required=False,
        allow_null=True,
        help_text=f"OR-ed together; none (absent or null) = every contact. At most {MAX_GROUPS} groups and "
        f"{MAX_CONDITIONS} conditions in all.",
    )

    null_only_in_requests = ("groups",)


class SortSerializer(serializers.Serializer):
    field = StrictCharField(max_length=MAX_NAME_LENGTH, help_text="A sortable field (see GET /contacts/fields).")
    direction = serializers.ChoiceField(choices=list(SORT_DIRECTIONS), default=SORT_DIRECTIONS[0])


class SearchSerializer(serializers.Serializer):
    """The body of POST /contacts/search (component `SearchRequest`)."""

    query = QuerySerializer(required=False, allow_null=True)
    q = StrictCharField(
        required=False,
        max_length=MAX_Q_LENGTH,
        allow_blank=True,
        help_text="Free text (name, email, phone digits, company), AND-ed with the query.",
    )
    sort = SortSerializer(
        many=True,
        required=False,
        max_length=MAX_SORT_KEYS,
        help_text="Nulls last; ties always break on id. Default: created_at desc.",
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    offset = serializers.IntegerField(required=False, min_value=0, max_value=MAX_OFFSET, default=0)
    count = serializers.ChoiceField(
        choices=list(COUNT_MODES),
        default=COUNT_MODES[0],
        help_text="`exact` count(*) (default); `estimate`: exact up to 10,000, above that scaled up from a "
        "fixed sample of the org's own contacts; or `none` (null).",
    )
    cursor = StrictCharField(
        required=False,
        max_length=MAX_CURSOR_LENGTH,
        help_text="`next_cursor` of the previous page (keyset paging, fast at any depth; same query and sort). "
        "Not combinable with offset.",
    )


class SearchResponseSerializer(serializers.Serializer):
    count = serializers.IntegerField(allow_null=True, help_text="Null when count=none.")
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()
    next_cursor = StrictCharField(
        allow_null=True,
        help_text="Pass as `cursor` for the next page; null when this page is not full (a full last page "
        "gets a cursor whose page is empty).",
    )
    results = ContactSerializer(many=True)


@extend_schema_field({"type": "array", "items": {"type": "string", "enum": list(ALL_OPERATORS)}})
class OperatorListField(serializers.ListField):
    pass


FILTER_KINDS = list(OPERATORS_BY_KIND)


class FieldCatalogEntrySerializer(serializers.Serializer):
    field = StrictCharField(help_text="Name to use in conditions and sort: `email`, `custom.tier`.")
    label = StrictCharField()
    type = StrictCharField(help_text="Built-in type or the custom field's data_type.")
    kind = serializers.ChoiceField(
        choices=FILTER_KINDS,
        help_text="Filter kind: decides operators and value shapes.",
    )
    operators = OperatorListField(help_text="The operators this field accepts.")
    sortable = serializers.BooleanField()
    options = serializers.ListField(child=StrictCharField(), required=False, help_text="Select types only.")

    absent_in_responses = ("options",)


class FieldCatalogSerializer(serializers.Serializer):
    fields = FieldCatalogEntrySerializer(many=True)


class SavedViewSerializer(serializers.Serializer):
    id = serializers.IntegerField(
        required=False, allow_null=True, help_text="Present: keep and update that view; absent or null: create."
    )
    name = StrictCharField(max_length=MAX_VIEW_NAME)
    # null means the default (no filter, no text, default sort, no columns), as when absent.
    query = QuerySerializer(required=False, allow_null=True)
    q = StrictCharField(required=False, max_length=MAX_Q_LENGTH, allow_blank=True, allow_null=True)
    sort = SortSerializer(many=True, required=False, max_length=MAX_SORT_KEYS, allow_null=True)
    columns = serializers.ListField(
        child=StrictCharField(),
        required=False,
        allow_null=True,
        help_text="Field names to display (see GET /contacts/fields), or `id`.",
    )
    position = serializers.IntegerField(required=False, min_value=0, help_text="Defaults to the list index.")

    null_only_in_requests = ("id", "query", "q", "sort", "columns")  # null: the default, stored as such


class SavedViewsSerializer(serializers.Serializer):
    views = SavedViewSerializer(many=True, max_length=MAX_VIEWS)


SEARCH_EXAMPLES = [
    OpenApiExample(
        "tagged and interested, or VIP in Berlin",
        request_only=True,
        value={
            "query": {
                "groups": [
                    {
                        "conditions": [
                            {"field": "tags", "op": "contains", "value": "replied-interested"},
                            {"field": "dnc", "op": "eq", "value": False},
                        ]
                    },
                    {
                        "conditions": [
                            {"field": "custom.tier", "op": "in", "value": ["Gold", "Platinum"]},
                            {"field": "company", "op": "contains", "value": "berlin"},
                        ]
                    },
                ]
            },
            "q": "ada",
            "sort": [{"field": "created_at", "direction": "desc"}],
            "limit": 50,
            "offset": 0,
        },
    ),
    OpenApiExample(
        "numbers and dates",
        request_only=True,
        value={
            "query": {
                "groups": [
                    {
                        "conditions": [
                            {"field": "custom.score", "op": "between", "value": [10, 20]},
                            {"field": "created_at", "op": "within_last", "value": {"amount": 7, "unit": "days"}},
                            {"field": "custom.renewal", "op": "lt", "value": "2026-01-01"},
                            {"field": "email", "op": "is_not_empty"},
                        ]
                    }
                ]
            },
            "sort": [{"field": "custom.score", "direction": "desc"}],
        },
    ),
    OpenApiExample("everyone", request_only=True, value={}),
]

VIEWS_EXAMPLE = OpenApiExample(
    "views",
    value={
        "views": [
            {
                "id": 3,
                "name": "Hot leads",
                "query": {
                    "groups": [{"conditions": [{"field": "tags", "op": "contains", "value": "replied-interested"}]}]
                },
                "q": "",
                "sort": [{"field": "created_at", "direction": "desc"}],
                "columns": ["name", "email", "tags"],
                "position": 0,
            },
            {
                "name": "No company",
                "query": {"groups": [{"conditions": [{"field": "company", "op": "is_empty"}]}]},
                "position": 1,
            },
        ]
    },
)
