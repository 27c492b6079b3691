"""OpenAPI generation: the org header and every error response, added once for all operations.

Responses are described as the API sends them, so a generated client is typed by what it gets
(`Contact.name: str`, not `None | str | Unset`): a response field is required, unless its serializer
lists it in `absent_in_responses` (sent only in some answers), and nullable only if it can be null
in an answer: fields listed in `null_only_in_requests` take null on write (it clears the field) and
are never null in an answer. A serializer already named for requests (`RenderRequestSerializer`)
names its component once (`RenderRequest`, not `RenderRequestRequest`).
"""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.plumbing import build_basic_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from crm.api.context import ORG_HEADER
from crm.api.exceptions import PROBLEM_CONTENT_TYPE
from crm.api.idempotency import KEY_PATTERN
from crm.api.permissions import IsOrgMember
from crm.api.serializer_fields import StrictCharField


class ProblemErrorSerializer(serializers.Serializer):
    code = StrictCharField(help_text="Machine-readable error code, e.g. `invalid_operator`.")
    detail = StrictCharField(help_text="Human-readable explanation.")
    attr = StrictCharField(
        allow_null=True, help_text="Dotted path of the offending input, e.g. `query.groups.0.conditions.1.op`."
    )


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, the body of every error response."""

    type = StrictCharField(help_text="URN naming the problem type, e.g. `urn:problem-type:crm:invalid-input`.")
    title = StrictCharField(help_text="The HTTP status phrase.")
    status = serializers.IntegerField()
    detail = StrictCharField()
    errors = ProblemErrorSerializer(many=True)
    existing_id = serializers.IntegerField(
        required=False, help_text="On a 409 for a duplicate contact: the id of the existing one, when visible."
    )

    absent_in_responses = ("existing_id",)


ERROR_DESCRIPTIONS = {
    "400": "Malformed request: unparsable JSON or a missing/malformed header.",
    "401": "No token, or the token is invalid or revoked.",
    "403": "Not a member of the organization (or it does not exist), or the role does not allow this.",
    "404": "Not found, or not visible to the caller.",
    "409": "Conflicts with an existing record.",
    "410": "No longer kept: the cursor is older than the change feed keeps (`CHANGES_DAYS`).",
    "412": "`If-Match` does not match the current version.",
    "413": "The request body exceeds the endpoint's cap.",
    "422": "Semantically invalid input, or an unknown query parameter (`unknown_parameter`); "
    "`errors[].attr` points at each culprit.",
    "429": "Rate limited; retry after `Retry-After` seconds.",
    "503": "The database is unavailable (`database_unavailable`), the request kept meeting concurrent changes "
    "(`transaction_conflict`) or ran past the statement timeout (`statement_timeout`); nothing was changed.",
}

RETRY_AFTER = {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."}
RATE_LIMIT_HEADERS = {
    "RateLimit-Policy": {
        "schema": {"type": "string"},
        "description": 'The rate limits this request counted against, e.g. `"api";q=1200;w=60` (quota per window '
        "of seconds), one item per bucket (draft-ietf-httpapi-ratelimit-headers).",
    },
    "RateLimit": {
        "schema": {"type": "string"},
        "description": 'What is left of each bucket, e.g. `"api";r=1199;t=0` (requests remaining; seconds until '
        "the oldest counted request leaves the window).",
    },
}

_EXAMPLE = {
    "type": "urn:problem-type:crm:invalid-input",
    "title": "Unprocessable Content",
    "status": 422,
    "detail": "Enter a valid email address.",
    "errors": [{"code": "invalid", "detail": "Enter a valid email address.", "attr": "email"}],
}


class AutoSchema(openapi.AutoSchema):
    def _is_org_scoped(self) -> bool:
        return any(
            isinstance(p, type) and issubclass(p, IsOrgMember) for p in getattr(self.view, "permission_classes", [])
        )

    def _is_idempotent(self) -> bool:
        action = getattr(self.view, "action", None) or self.method.lower()
        return getattr(getattr(self.view, action, None), "idempotent", False)

    def get_override_parameters(self):
        params = list(super().get_override_parameters())
        if self._is_idempotent():
            params.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    {**build_basic_type(OpenApiTypes.STR), "minLength": 1, "maxLength": 255, "pattern": KEY_PATTERN},
                    OpenApiParameter.HEADER,
                    required=False,
                    description="Makes retries safe: the same key with the same body replays the first answer "
                    "(header `Idempotent-Replayed: true`) and creates nothing more; with a different body → 422; "
                    "while the first is still running → 409. Kept 24 h per org and user.",
                )
            )
        if self._is_org_scoped():
            params.append(
                OpenApiParameter(
                    ORG_HEADER,
                    int,
                    OpenApiParameter.HEADER,
                    required=True,
                    description="Id of the organization the request acts in.",
                )
            )
        return params

    def error_statuses(self) -> list[str]:
        statuses = set(getattr(self.view, "error_statuses", ()))
        needs_auth = bool(self.get_auth())
        if needs_auth:
            statuses |= {"401", "429"}
        if self._is_org_scoped():
            statuses |= {"400", "403"}
        if "{" in self.path:
            statuses.add("404")
        if self.method in ("POST", "PUT", "PATCH"):
            statuses |= {"400", "413", "422"}
        if self._is_idempotent():
            statuses |= {"409", "422"}
        statuses.add("503")  # every request runs in a database transaction
        statuses.add("422")  # an unknown query parameter, on every operation (crm.api.query_parameters)
        return sorted(str(s) for s in statuses)

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        # DRF refuses NUL in text, and trims text before its "may not be blank" check, so a
        # non-blank field needs a non-space character: say so, or a client (and Schemathesis)
        # may send "a\u0000b" or "\u000b".
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and not {"pattern", "enum"} & set(schema)
        ):
            non_blank = field.trim_whitespace and not field.allow_blank
            schema["pattern"] = r"^[^\u0000]*[^\s\u0000][^\u0000]*$" if non_blank else r"^[^\u0000]*$"
        if direction == "request" and getattr(field, "accepts_json_number", False):
            # A decimal field written as a string or a JSON number within its digits.
            top = {key: schema.pop(key) for key in ("nullable", "description") if key in schema}
            largest = float(10 ** (field.max_digits - field.decimal_places)) - 0.01
            number = {"type": "number", "minimum": -largest, "maximum": largest}
            schema = {"oneOf": [schema, number], **top}
        return schema

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        # A body whose view refuses unknown keys (422 `unknown_key`) says so: `closed = True`.
        if direction == "request" and getattr(serializer, "closed", False):
            schema["additionalProperties"] = False
        if direction == "response":
            properties = schema.get("properties", {})
            absent = set(getattr(serializer, "absent_in_responses", ()))
            required = [name for name in properties if name not in absent]
            schema.pop("required", None)
            if required:
                schema["required"] = sorted(required)
            for name in getattr(serializer, "null_only_in_requests", ()):
                if name in properties:
                    properties[name] = not_null(properties[name])
        return schema

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        return name.removesuffix("Request") if name.endswith("RequestRequest") else name

    def _get_request_body(self, direction="request"):
        body = super()._get_request_body(direction)
        if body and getattr(self.view, "request_body_required", False):
            body["required"] = True
        return body

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        problem = self.resolve_serializer(ProblemSerializer, "response").ref
        for status in self.error_statuses():
            if status in responses:
                continue
            responses[status] = {
                "description": ERROR_DESCRIPTIONS.get(status, "Error"),
                "content": {PROBLEM_CONTENT_TYPE: {"schema": problem, "examples": _problem_examples(status)}},
            }
            if status in ("429", "503"):
                responses[status]["headers"] = {"Retry-After": RETRY_AFTER}
        for response in responses.values():
            response.setdefault("headers", {}).update(RATE_LIMIT_HEADERS)
        return responses


def not_null(schema: dict) -> dict:
    """A property's schema without null: `nullable` dropped, a `NullEnum` branch removed, and a
    lone `allOf` reference left bare when nothing else qualifies it."""
    schema = {key: value for key, value in schema.items() if key != "nullable"}
    if "oneOf" in schema:
        schema["oneOf"] = [s for s in schema["oneOf"] if s.get("$ref") != "#/components/schemas/NullEnum"]
        if len(schema["oneOf"]) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "oneOf"}, "allOf": schema["oneOf"]}
    if list(schema) == ["allOf"] and len(schema["allOf"]) == 1:
        return schema["allOf"][0]
    return schema


def _problem_examples(status: str) -> dict:
    if status == "422":
        return {"invalid_input": {"value": _EXAMPLE}}
    if status == "503":
        detail = "The database is unavailable or has no free connection; nothing was changed. Retry shortly."
        code = "database_unavailable"
        body = {"type": "urn:problem-type:crm:database-unavailable", "title": "Service Unavailable", "status": 503}
        return {code: {"value": {**body, "detail": detail, "errors": [{"code": code, "detail": detail, "attr": None}]}}}
    from http import HTTPStatus

    phrase = HTTPStatus(int(status)).phrase
    detail = ERROR_DESCRIPTIONS.get(status, phrase)
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    return {
        code: {
            "value": {
                "type": f"urn:problem-type:crm:{code.replace('_', '-')}",
                "title": phrase,
                "status": int(status),
                "detail": detail,
                "errors": [{"code": code, "detail": detail, "attr": None}],
            }
        }
    }
