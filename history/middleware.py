"""The admin's writes are recorded with source `admin` and the staff user who made them."""

from __future__ import annotations

from history.context import set_change_context

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


class AdminChangeContextMiddleware:
    """After AuthenticationMiddleware, inside the request's transaction (crm.api.middleware):
    a write to the admin sets the history's context; a read costs nothing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            request.method not in SAFE_METHODS
            and request.path_info.startswith("/admin/")
            and request.user.is_authenticated
        ):
            set_change_context(source="admin", user_id=request.user.pk)
        return self.get_response(request)
