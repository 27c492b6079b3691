"""Body-size caps answered with 413 before anything reads the body."""

from django.conf import settings
from django.http import JsonResponse

from crm.api.exceptions import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX


def body_cap_for(path: str) -> int:
    if path.rstrip("/").endswith("/contacts/import"):
        return settings.IMPORT_MAX_BODY_BYTES
    return settings.API_MAX_BODY_BYTES


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            cap = body_cap_for(request.path)
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
