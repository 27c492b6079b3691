"""Staff views of organizations and memberships, and the reach of every tenant admin.

Superusers see and change every organization. Other staff (`is_staff`) act in the admin as they
would through the API (DESIGN §2): they see only the organizations they are members of, and there
only what their data scope shows (assigned-only members: their contacts); their role decides what
they may change (the org's catalogs, owner or admin). Django model permissions a superuser grants
add to what a role allows, never to where: every tenant admin's queryset goes through
`StaffScope.filter`, once, in `OrgScopedAdminMixin.get_queryset`.
"""

from __future__ import annotations

import operator
from functools import reduce

from django.contrib import admin
from django.contrib.auth import get_permission_codename, get_user_model

from orgs.models import Membership, Organization, TenantModel


class StaffScope:
    """What one staff user reaches in the admin: their memberships, read once per request."""

    def __init__(self, user):
        self.user = user
        self.everything = bool(user.is_active and user.is_superuser)
        memberships = Membership.objects.filter(user_id=user.pk).select_related("org", "user")
        self.memberships: dict[int, Membership] = {m.org_id: m for m in memberships} if user.pk else {}

    @property
    def org_ids(self) -> list[int] | None:
        """The orgs this user sees; None: every org (a superuser)."""
        return None if self.everything else sorted(self.memberships)

    def orgs(self, *, writes: bool = False, catalog: bool = False):
        """The organizations this user sees (`writes`: where the role allows a write)."""
        orgs = Organization.objects.all()
        if self.everything:
            return orgs
        ids = [org_id for org_id in self.memberships if not writes or self.may_write(org_id, catalog=catalog)]
        return orgs.filter(pk__in=ids)

    def single_org(self) -> Organization | None:
        """The one organization this user works in, when there is exactly one."""
        if self.everything:
            orgs = list(Organization.objects.order_by("id")[:2])
            return orgs[0] if len(orgs) == 1 else None
        return next(iter(self.memberships.values())).org if len(self.memberships) == 1 else None

    def sees_org(self, org_id) -> bool:
        return self.everything or org_id in self.memberships

    def membership(self, org_id: int) -> Membership | None:
        """The membership the services act as in `org_id`: the user's own; for a superuser who is not
        a member, an unsaved owner of the whole org (nothing stores it; staff-wide reach is theirs);
        None for other staff outside the org."""
        found = self.memberships.get(org_id)
        if found is not None or not self.everything:
            return found
        return Membership(
            org_id=org_id, user=self.user, role=Membership.Role.OWNER, data_scope=Membership.DataScope.ALL
        )

    def may_write(self, org_id: int | None = None, *, catalog: bool = False) -> bool:
        """Whether the role allows a write in `org_id` (None: in one of the user's orgs). Contacts,
        opportunities and views: every member; the catalogs (tags, fields, values): owner or admin."""
        if self.everything:
            return True
        if org_id is None:
            found = list(self.memberships.values())
        else:
            found = [self.memberships[org_id]] if org_id in self.memberships else []
        return any(m.is_admin or not catalog for m in found)

    def filter(self, queryset):
        """`queryset` (of a tenant model) narrowed to what the user sees: each membership's
        `for_member` scope, OR-ed; nothing without a membership; everything for a superuser."""
        if self.everything:
            return queryset
        if not self.memberships:
            return queryset.none()
        return reduce(operator.or_, (queryset.for_member(m) for m in self.memberships.values()))

    def members(self):
        """Users who may be assigned contacts here: members of the user's orgs (any user for a superuser)."""
        users = get_user_model().objects.all()
        return users if self.everything else users.filter(memberships__org_id__in=self.org_ids).distinct()


def staff_scope(request) -> StaffScope:
    """The request user's scope, computed once per request."""
    scope = getattr(request, "_staff_scope", None)
    if scope is None or scope.user.pk != request.user.pk:
        scope = request._staff_scope = StaffScope(request.user)
    return scope


class OrgScopedAdminMixin:
    """Every tenant ModelAdmin: the queryset through `StaffScope.filter`, foreign keys limited to
    the staff user's orgs and their rows, permissions from the role where Django's are not granted.
    `catalog_writes`: adding, changing and deleting need the owner or admin role."""

    catalog_writes = False

    def get_queryset(self, request):
        return staff_scope(request).filter(super().get_queryset(request))

    def has_module_permission(self, request):
        return super().has_module_permission(request) or bool(staff_scope(request).memberships)

    def has_view_permission(self, request, obj=None):
        granted = super().has_view_permission(request, obj)
        return self._in_reach(request, obj) and (granted or self._role_allows(request, obj, write=False))

    def has_add_permission(self, request, *args):
        return self._django_allows(request, "add") or self._role_allows(request, None, write=True)

    def has_change_permission(self, request, obj=None):
        granted = self._django_allows(request, "change")
        return self._in_reach(request, obj) and (granted or self._role_allows(request, obj, write=True))

    def has_delete_permission(self, request, obj=None):
        granted = self._django_allows(request, "delete")
        return self._in_reach(request, obj) and (granted or self._role_allows(request, obj, write=True))

    def _django_allows(self, request, action: str) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")

    @staticmethod
    def _in_reach(request, obj) -> bool:
        org_id = getattr(obj, "org_id", None)
        return org_id is None or staff_scope(request).sees_org(org_id)

    def _role_allows(self, request, obj, *, write: bool) -> bool:
        scope = staff_scope(request)
        org_id = getattr(obj, "org_id", None)
        if not write:
            return bool(scope.memberships) if org_id is None else scope.sees_org(org_id)
        return scope.may_write(org_id, catalog=self.catalog_writes)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        scope = staff_scope(request)
        related = db_field.related_model
        if related is Organization:
            kwargs.setdefault("queryset", scope.orgs(writes=True, catalog=self.catalog_writes))
        elif issubclass(related, TenantModel):
            kwargs.setdefault("queryset", scope.filter(related._default_manager.all()))
        elif related is get_user_model():
            kwargs.setdefault("queryset", scope.members())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyAdminMixin:
    """A log the admin shows but never adds to, edits or deletes (jobs, webhook deliveries): what
    it records is changed by its own actions and services only. First among the bases: it
    overrides the org scope's permissions."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrgFilter(admin.SimpleListFilter):
    """The organization switcher of every tenant admin: the staff user's orgs by id, from their own
    (small) table, not a DISTINCT over the filtered one."""

    title = "organization"
    parameter_name = "org"
    limit = 200

    def lookups(self, request, model_admin):
        orgs = staff_scope(request).orgs().only("id", "name").order_by("id")[: self.limit]
        return [(str(org.id), str(org)) for org in orgs]

    def queryset(self, request, queryset):
        value = self.value()
        if not (value and value.isdigit() and len(value) <= 18):
            return queryset
        return queryset.filter(org_id=int(value)) if staff_scope(request).sees_org(int(value)) else queryset.none()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]

    def has_add_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return True  # on an organization page the staff user may open (OrganizationAdmin)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    """Superusers: every org. Other staff: their orgs, renamed or re-zoned by their owners and admins."""

    list_display = ["id", "name", "default_region", "timezone", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]

    def get_queryset(self, request):
        scope = staff_scope(request)
        orgs = super().get_queryset(request)
        return orgs if scope.everything else orgs.filter(pk__in=scope.org_ids)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or bool(staff_scope(request).memberships)

    def has_view_permission(self, request, obj=None):
        scope = staff_scope(request)
        if obj is not None and not scope.sees_org(obj.pk):
            return False
        return super().has_view_permission(request, obj) or bool(scope.memberships)

    def has_change_permission(self, request, obj=None):
        scope = staff_scope(request)
        if scope.everything or obj is None:
            return super().has_change_permission(request, obj)
        return scope.sees_org(obj.pk) and scope.may_write(obj.pk, catalog=True)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Read-only for staff who are not superusers: who belongs to their orgs, in which role."""

    list_display = ["id", "org", "user", "role", "data_scope", "created_at"]
    list_filter = ["role", "data_scope", OrgFilter]
    search_fields = ["user__email", "org__name"]
    raw_id_fields = ["org", "user"]
    list_select_related = ["org", "user"]

    def get_queryset(self, request):
        scope = staff_scope(request)
        rows = super().get_queryset(request)
        return rows if scope.everything else rows.filter(org_id__in=scope.org_ids)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or bool(staff_scope(request).memberships)

    def has_view_permission(self, request, obj=None):
        scope = staff_scope(request)
        if obj is not None and not scope.sees_org(obj.org_id):
            return False
        return super().has_view_permission(request, obj) or bool(scope.memberships)
