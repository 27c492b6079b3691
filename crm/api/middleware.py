"""Request-level guards: rate-limit headers, body-size caps (413 before anything reads the body)
and the per-request transaction that row-level security hangs on.

Every guard keys on `path_info`, the path the URL resolver routes: behind a proxy that mounts
the service under a prefix (SCRIPT_NAME), `path` starts with the prefix and would slip past.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile

import psycopg
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import WSGIRequest
from django.db import DatabaseError, transaction
from django.http import JsonResponse

from crm import db_security
from crm.api.exceptions import (
    database_failure,
    database_failure_response,
    problem_json,
)
from crm.api.query_parameters import unknown_query_parameters
from crm.api.throttling import ENVIRON_KEY, rate_limit_headers, uncounted_buckets
from crm.errors import FieldError

logger = logging.getLogger(__name__)


def is_import(path: str) -> bool:
    return path.rstrip("/").endswith("/contacts/import")


def body_cap_for(request) -> int:
    """An import may be async (`?async=true`, or a JSON body's `options`): up to the async cap,
    and the import view holds a synchronous JSON body to the smaller one."""
    if not is_import(request.path_info):
        return settings.API_MAX_BODY_BYTES
    may_be_async = request.GET.get("async", "").strip().lower() in ("true", "1", "yes", "on") or (
        request.content_type == "application/json"
    )
    return settings.ASYNC_IMPORT_MAX_BODY_BYTES if may_be_async else settings.IMPORT_MAX_BODY_BYTES


def statement_timeout_for(path: str) -> str:
    return settings.IMPORT_STATEMENT_TIMEOUT if is_import(path) else settings.STATEMENT_TIMEOUT


class UnknownQueryParameterMiddleware:
    """422 `unknown_parameter` for a query parameter the operation does not document, before
    anything else runs (crm.api.query_parameters)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.GET and request.path_info.startswith("/api/v1/"):
            unknown = unknown_query_parameters(request.method, request.path_info, request.GET.keys())
            if unknown:
                return unknown_parameters_response(unknown)
        return self.get_response(request)


def unknown_parameters_response(names: list[str]) -> JsonResponse:
    errors = [FieldError(name, "unknown_parameter", f"Unknown query parameter {name!r}.") for name in names]
    detail = errors[0].detail if len(errors) == 1 else f"Unknown query parameters: {', '.join(names)}."
    return problem_json(422, "unknown_parameter", detail, errors=errors)


class RateLimitHeadersMiddleware:
    """`RateLimit-Policy` and `RateLimit` on every API answer (crm.api.throttling): the buckets the
    request passed through, or for one refused before any counted it, its `api` bucket as it stands."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not request.META.get(ENVIRON_KEY) and request.path_info.startswith("/api/"):
            request.META[ENVIRON_KEY] = uncounted_buckets(request)
        for name, value in rate_limit_headers(request.META).items():
            response[name] = value
        return response


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/api/"):
            length = content_length(request)
            cap = body_cap_for(request)
            if length > cap:
                detail = f"The request body is {length} bytes; this endpoint accepts at most {cap} bytes."
                return problem_json(413, "payload_too_large", detail)
        return self.get_response(request)


class RequestTransactionMiddleware:
    """Each API and admin request is one transaction, run as the non-owner app role.

    - The body is read first: a client that sends it slowly holds no database transaction. A large
      one is spooled to a temporary file (`_read_body`), not held in memory.
    - The org is set inside it once `X-Org-Id` is resolved (crm.api.context); until then the
      request sees no tenant rows. The admin spans orgs through the named bypass.
    - Its statements run under a `statement_timeout` (STATEMENT_TIMEOUT; imports have their own).
    - A 5xx answer rolls everything back, so a server-side failure leaves nothing half-written.
    - A deadlock or serialization failure runs the whole request again from the same bytes, at
      most TRANSACTION_ATTEMPTS times; then, and for an unreachable database, the answer is a
      503 with Retry-After, never a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(("/api/", "/admin/")):
            return self.get_response(request)
        try:
            request, replay = self._read_body(request)
        except RequestDataTooBig:
            return problem_json(413, "payload_too_large", "The request body is too large.")
        try:
            return self._attempts(request, replay)
        finally:
            replay.close()

    def _attempts(self, request, replay: BodyReplay):
        attempts = max(settings.TRANSACTION_ATTEMPTS, 1)
        for attempt in range(1, attempts + 1):
            try:
                response = self._in_transaction(request)
            except (DatabaseError, psycopg.Error) as exc:  # at BEGIN (no connection) or COMMIT
                failure = database_failure(exc)
                if failure is None:
                    raise
                response = database_failure_response(failure)
            failure = getattr(response, "database_failure", None)
            if failure is None or not failure.retryable or attempt == attempts:
                return response
            logger.info(
                "Retrying %s %s after %s (attempt %d)", request.method, request.path_info, failure.code, attempt
            )
            request = replay.request(keep_rate_limits=False)

    @staticmethod
    def _read_body(request) -> tuple:
        """Read the whole body now. Up to SPOOL_ABOVE_BYTES it is kept in memory (`request.body`);
        a larger one (an async import of hundreds of MB) is copied to a temporary file in
        SPOOL_CHUNK_BYTES pieces and the request reads it from there, so a web worker's memory does
        not grow with the upload."""
        length = content_length(request)
        if length <= SPOOL_ABOVE_BYTES:
            body = request.body
            return request, BodyReplay(request, io.BytesIO(body))
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed by BodyReplay.close() after the response
        digest = hashlib.sha256()
        while chunk := request.read(SPOOL_CHUNK_BYTES):
            spool.write(chunk)
            digest.update(chunk)
        request.META[BODY_DIGEST_KEY] = digest.hexdigest()
        replay = BodyReplay(request, spool)
        return replay.request(keep_rate_limits=True), replay

    def _in_transaction(self, request):
        # Nested (as in tests): reset the role and org on the way out; else COMMIT does it.
        nested = not transaction.get_autocommit()
        with transaction.atomic():
            db_security.enter_request(
                bypass=request.path_info.startswith("/admin/"),
                statement_timeout=statement_timeout_for(request.path_info),
            )
            try:
                response = self.get_response(request)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
            finally:
                if nested:
                    db_security.leave_request()
        return response


def content_length(request) -> int:
    try:
        return max(int(request.META.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0


# Bodies larger than this are spooled to a temporary file rather than held in memory.
SPOOL_ABOVE_BYTES = 8 * 1024 * 1024
SPOOL_CHUNK_BYTES = 1024 * 1024
# A spooled body's SHA-256 (hex), computed while spooling, for the idempotency fingerprint.
BODY_DIGEST_KEY = "crm.body_sha256"


class BodyReplay:
    """The request's body, read once, to hand to each attempt as a fresh request."""

    def __init__(self, request, stream):
        self.environ = request.environ
        self.stream = stream

    def request(self, keep_rate_limits: bool) -> WSGIRequest:
        """A fresh request reading the same bytes from the start. The first attempt shares the
        rate-limit notes with the original request (the headers report them); a retry's are
        its own, and the headers report the first attempt's."""
        if keep_rate_limits:
            self.environ.setdefault(ENVIRON_KEY, [])
        environ = {k: v for k, v in self.environ.items() if keep_rate_limits or k != ENVIRON_KEY}
        self.stream.seek(0)
        environ["wsgi.input"] = self.stream
        return WSGIRequest(environ)

    def close(self) -> None:
        self.stream.close()
