"""Permission classes: org membership first, then role."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from crm.api.context import resolve_membership


class IsOrgMember(BasePermission):
    """Resolves `X-Org-Id` into `request.membership` (400 malformed, 403 not a member)."""

    def has_permission(self, request, view) -> bool:
        request.membership = resolve_membership(request)
        return True


class IsOrgAdmin(BasePermission):
    """Owners and admins only: catalog writes (fields, folders, custom values, tag rename/delete)."""

    message = "This needs the owner or admin role in this organization."

    def has_permission(self, request, view) -> bool:
        return request.membership.is_admin


class IsOrgAdminForWrites(IsOrgAdmin):
    """Everyone reads; owners and admins write."""

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or super().has_permission(request, view)
