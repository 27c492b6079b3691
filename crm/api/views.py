"""Error pages for requests that never reach a DRF view (unknown URLs, crashes): problem JSON too."""

from django.http import JsonResponse

from crm.api.exceptions import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_PREFIX


def _problem(status: int, code: str, title: str, detail: str) -> JsonResponse:
    body = {
        "type": PROBLEM_TYPE_PREFIX + code.replace("_", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [{"code": code, "detail": detail, "attr": None}],
    }
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def not_found(request, exception=None):
    if request.path_info.startswith("/api/"):
        return _problem(404, "not_found", "Not Found", "No such endpoint.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path_info.startswith("/api/"):
        return _problem(500, "server_error", "Internal Server Error", "An unexpected error occurred; it was logged.")
    from django.views.defaults import server_error as default

    return default(request)
