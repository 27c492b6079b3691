"""The collection envelope `{"count", "next", "previous", "results"}` with validated caps."""

from rest_framework import pagination

from crm.errors import FieldError, InvalidInput
from crm.limits import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET


def parse_bounded_int(raw, attr: str, default: int, minimum: int, maximum: int | None) -> tuple[int, list]:
    """Parse one paging number; return (value, errors) so callers can collect every error."""
    if raw is None:
        return default, []
    if isinstance(raw, bool):
        value = None
    elif isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip()
        value = int(text) if text.lstrip("-").isdigit() and len(text) < 19 else None
    bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
    if value is None or value < minimum or (maximum is not None and value > maximum):
        return default, [FieldError(attr, "out_of_range", f"{attr} must be an integer {bound}.")]
    return value, []


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    default_limit = DEFAULT_LIMIT
    max_limit = MAX_LIMIT

    def get_limit(self, request):
        value, errors = parse_bounded_int(
            request.query_params.get("limit"), "limit", self.default_limit, 1, self.max_limit
        )
        if errors:
            raise InvalidInput(errors)
        return value

    def get_offset(self, request):
        value, errors = parse_bounded_int(request.query_params.get("offset"), "offset", 0, 0, MAX_OFFSET)
        if errors:
            raise InvalidInput(errors)
        return value

    def get_paginated_response_schema(self, schema):
        envelope = super().get_paginated_response_schema(schema)
        envelope["required"] = list(envelope["properties"])  # every page carries each key (null when none)
        return envelope

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for param in params:
            if param["name"] == "limit":
                param["schema"].update({"minimum": 1, "maximum": self.max_limit, "default": self.default_limit})
                param["description"] = f"Page size, 1–{self.max_limit} (default {self.default_limit})."
            if param["name"] == "offset":
                param["schema"].update({"minimum": 0, "maximum": MAX_OFFSET, "default": 0})
        return params
