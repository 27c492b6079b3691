"""Error pages for requests that never reach a DRF view (unknown URLs, crashes): problem JSON too."""

from crm.api.exceptions import problem_json


def not_found(request, exception=None):
    if request.path_info.startswith("/api/"):
        return problem_json(404, "not_found", "No such endpoint.")
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path_info.startswith("/api/"):
        return problem_json(500, "server_error", "An unexpected error occurred; it was logged.")
    from django.views.defaults import server_error as default

    return default(request)
