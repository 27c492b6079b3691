"""Request-level guards: body-size caps (413 before anything reads the body) and the
per-request transaction that row-level security hangs on."""

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse

from crm import db_security
from crm.api.exceptions import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX
from crm.api.throttling import rate_limit_headers


def body_cap_for(path: str) -> int:
    if path.rstrip("/").endswith("/contacts/import"):
        return settings.IMPORT_MAX_BODY_BYTES
    return settings.API_MAX_BODY_BYTES


class RateLimitHeadersMiddleware:
    """`RateLimit-Policy` and `RateLimit` on every answer that passed a rate limit (crm.api.throttling)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in rate_limit_headers(request.META).items():
            response[name] = value
        return response


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            cap = body_cap_for(request.path_info)
            if length > cap:
                detail = f"The request body is {length} bytes; this endpoint accepts at most {cap} bytes."
                return JsonResponse(
                    {
                        "type": PROBLEM_TYPE_PREFIX + "payload-too-large",
                        "title": "Content Too Large",
                        "status": 413,
                        "detail": detail,
                        "errors": [{"code": "payload_too_large", "detail": detail, "attr": None}],
                    },
                    status=413,
                    content_type=PROBLEM_CONTENT_TYPE,
                )
        return self.get_response(request)


class RequestTransactionMiddleware:
    """Each API and admin request is one transaction, run as the non-owner app role.

    The org is set inside it once `X-Org-Id` is resolved (crm.api.context); until then the
    request sees no tenant rows. The admin spans orgs through the named bypass. A 5xx answer
    rolls everything back, so a server-side failure leaves nothing half-written.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(("/api/", "/admin/")):
            return self.get_response(request)
        with transaction.atomic():
            # Nested (as in tests): reset the role and org on the way out; else COMMIT does it.
            nested = bool(transaction.get_connection().savepoint_ids)
            db_security.enter_request(bypass=request.path_info.startswith("/admin/"))
            try:
                response = self.get_response(request)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
            finally:
                if nested:
                    db_security.leave_request()
        return response
