"""One error body everywhere: RFC 9457 problem details.

`{"type", "title", "status", "detail", "errors": [{"code", "detail", "attr"}]}` with
`Content-Type: application/problem+json`. `attr` is the dotted path of the offending
input (`query.groups.0.conditions.1.op`), or null when the error is about the whole body.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from crm.errors import Conflict, DomainError, FieldError, Gone, InvalidInput, NotFound, PreconditionFailed, TooLarge

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:problem-type:crm:"


class MalformedRequest(exceptions.APIException):
    """400: the request itself is malformed (a bad header, unparsable body)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "malformed_request"
    default_detail = "Malformed request."

    def __init__(self, detail: str, attr: str | None = None, code: str | None = None):
        super().__init__(detail, code)
        self.attr = attr


# The HTTP status of each domain error (crm/errors.py); the most specific class first.
DOMAIN_ERROR_STATUS = (
    (InvalidInput, status.HTTP_422_UNPROCESSABLE_ENTITY),
    (NotFound, status.HTTP_404_NOT_FOUND),
    (Conflict, status.HTTP_409_CONFLICT),
    (PreconditionFailed, status.HTTP_412_PRECONDITION_FAILED),
    (Gone, status.HTTP_410_GONE),
    (TooLarge, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE),
    (DomainError, status.HTTP_422_UNPROCESSABLE_ENTITY),
)


@dataclass(frozen=True)
class DatabaseFailure:
    """A database error that is not the client's input: answered 503, never 500."""

    code: str
    detail: str
    retry_after: int | None
    retryable: bool = False  # the whole request transaction may run again (RequestTransactionMiddleware)

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else None


QUERY_CANCELED = "57014"  # statement_timeout
# Two transactions each waited for the other (40P01) or a serializable read was overtaken (40001).
RETRYABLE_SQLSTATES = {"40P01", "40001"}
# Connection failures (08), insufficient resources such as too many connections (53), the server
# shutting down or starting up (57P01-57P03).
UNAVAILABLE_CLASSES = {"08", "53", "57"}


def database_failure(exc: BaseException) -> DatabaseFailure | None:
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        sqlstate = exc.sqlstate  # from a raw psycopg cursor (the import's COPY and staging SQL)
    elif isinstance(exc, OperationalError | InterfaceError):
        sqlstate = getattr(exc.__cause__, "sqlstate", None)
    else:
        return None
    if sqlstate == QUERY_CANCELED:
        return DatabaseFailure(
            "statement_timeout",
            "The request needed more database time than the server allows one request (STATEMENT_TIMEOUT); "
            "narrow it (a more selective filter, count=none, a smaller page) or retry later.",
            retry_after=None,
        )
    if sqlstate in RETRYABLE_SQLSTATES:
        return DatabaseFailure(
            "transaction_conflict",
            "The request kept meeting concurrent changes to the same rows and was not applied; retry it.",
            retry_after=1,
            retryable=True,
        )
    if sqlstate is None or sqlstate[:2] in UNAVAILABLE_CLASSES:
        return DatabaseFailure(
            "database_unavailable",
            "The database is unavailable or has no free connection; nothing was changed. Retry shortly.",
            retry_after=2,
        )
    return None


def problem_body(status_code: int, code: str, detail: str, errors: list[FieldError] | None = None, **extra) -> dict:
    return {
        "type": PROBLEM_TYPE_PREFIX + code.replace("_", "-"),
        "title": _title(status_code),
        "status": status_code,
        "detail": detail,
        "errors": [e.as_dict() for e in (errors if errors is not None else [FieldError(None, code, detail)])],
        **extra,
    }


def problem_json(
    status_code: int, code: str, detail: str, headers: dict | None = None, errors: list[FieldError] | None = None
) -> JsonResponse:
    """A problem document outside DRF (middleware, Django's error handlers)."""
    body = problem_body(status_code, code, detail, errors)
    return JsonResponse(body, status=status_code, content_type=PROBLEM_CONTENT_TYPE, headers=headers)


def database_failure_response(failure: DatabaseFailure) -> JsonResponse:
    response = problem_json(503, failure.code, failure.detail, failure.headers)
    response.database_failure = failure
    return response


def flatten_errors(detail, prefix: str | None = None) -> list[FieldError]:
    """DRF's nested error structure → flat `FieldError`s with dotted attribute paths."""
    if isinstance(detail, dict):
        out: list[FieldError] = []
        for key, value in detail.items():
            key = str(key)
            if key in ("non_field_errors", "__all__"):
                out += flatten_errors(value, prefix)
            else:
                out += flatten_errors(value, f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(detail, list):
        out = []
        for index, item in enumerate(detail):
            if isinstance(item, (dict, list)) and item:
                out += flatten_errors(item, f"{prefix}.{index}" if prefix else str(index))
            elif isinstance(item, (dict, list)):
                continue  # an empty dict/list: that list item had no error
            else:
                out += flatten_errors(item, prefix)
        return out
    code = getattr(detail, "code", None) or "invalid"
    return [FieldError(prefix, str(code), str(detail))]


def problem_response(
    status_code: int,
    code: str,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict | None = None,
    **extra,
) -> Response:
    body = problem_body(status_code, code, detail, errors, **extra)
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _title(status_code: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status_code).phrase
    except ValueError:  # pragma: no cover - only standard codes are used
        return "Error"


def problem_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every error (ours, DRF's, Django's) as a problem document."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, DomainError):
        status_code = next(code for cls, code in DOMAIN_ERROR_STATUS if isinstance(exc, cls))
        code = InvalidInput.code if isinstance(exc, InvalidInput) else exc.code
        return problem_response(status_code, code, exc.detail, exc.errors, **exc.extra)
    if isinstance(exc, exceptions.ValidationError):
        errors = flatten_errors(exc.detail)
        detail = errors[0].detail if len(errors) == 1 else InvalidInput.default_detail
        return problem_response(422, "invalid_input", detail, errors)
    if isinstance(exc, exceptions.APIException):
        headers = {}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
        if isinstance(exc, exceptions.ParseError):
            code = "malformed_request"
        detail = str(exc.detail)
        attr = getattr(exc, "attr", None)
        errors = [FieldError(attr, code, detail)]
        return problem_response(exc.status_code, code, detail, errors, headers=headers, **getattr(exc, "extra", {}))
    failure = database_failure(exc)
    if failure is not None:
        logger.warning("Database failure answered 503 (%s): %s", failure.code, exc)
        response = problem_response(503, failure.code, failure.detail, headers=failure.headers)
        response.database_failure = failure  # read by RequestTransactionMiddleware
        return response
    logger.exception("Unhandled error", exc_info=exc)
    return problem_response(500, "server_error", "An unexpected error occurred; it has been logged.")
