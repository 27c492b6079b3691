"""Base views: org context, scoping and error mapping done once, here.

Subclasses name a `queryset_model` and may refine the scoped queryset in
`refine_queryset()`; they may not override `get_queryset()` (checked at class
creation), so no endpoint can forget the org or the assigned-only scope.
"""

from django.core.exceptions import ValidationError
from django.http import Http404
from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated

from crm.api.detail import DetailStatement
from crm.api.permissions import IsOrgMember
from orgs.models import Membership

# (view class, model, assigned-only scope, role) -> the detail statement (crm.api.detail)
_DETAIL_STATEMENTS: dict = {}


class SealedQuerysetMixin:
    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__ and cls.__name__ != "OrgScopedViewMixin":
            raise TypeError(f"{cls.__name__} must not override get_queryset(); implement refine_queryset().")


class OrgScopedViewMixin(SealedQuerysetMixin):
    """Every org endpoint: authenticated, a member of `X-Org-Id`, data scoped by `for_member`."""

    permission_classes = [IsAuthenticated, IsOrgMember]
    queryset_model = None

    @property
    def membership(self):
        return self.request.membership

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no org
            return self.queryset_model.objects.none()
        qs = self.queryset_model.objects.for_member(self.request.membership)
        return self.refine_queryset(qs)

    def refine_queryset(self, qs):
        return qs

    def filter_queryset(self, queryset):
        # List filters (FilterSets) describe collections; a detail/update/delete of one object
        # by id skips building them (a measurable share of a GET /contacts/{id}).
        if getattr(self, "action", "list") not in (None, "list"):
            return queryset
        return super().filter_queryset(queryset)

    def get_object(self):
        """The scoped object by pk, reusing its compiled statement when the view adds nothing
        to the scoped queryset (crm.api.detail); the ORM's own path otherwise."""
        cls = type(self)
        plain = (
            cls.refine_queryset is OrgScopedViewMixin.refine_queryset
            and cls.filter_queryset is OrgScopedViewMixin.filter_queryset
            and self.lookup_field == "pk"
        )
        if not plain:
            return super().get_object()
        model, membership = self.queryset_model, self.request.membership
        try:
            pk = model._meta.pk.get_prep_value(model._meta.pk.to_python(self.kwargs[self.lookup_url_kwarg or "pk"]))
        except (TypeError, ValueError, ValidationError):
            raise Http404 from None
        if isinstance(pk, int) and not -(2**63) <= pk < 2**63:
            raise Http404  # no such row; and a numeric parameter would not use the pk index
        key = (cls, model, membership.sees_only_assigned, membership.role)
        statement = _DETAIL_STATEMENTS.get(key)
        if statement is None:
            # Compiled for a stand-in member of this scope and role, with values no real row
            # has, so each placeholder is known by its value.
            stand_in = Membership(org_id=-(10**15) - 1, user_id=-(10**15) - 2, role=membership.role,
                                  data_scope=membership.data_scope)  # fmt: skip
            sentinels = {"org": stand_in.org_id, "user": stand_in.user_id, "pk": -(10**15) - 3}
            queryset = self.refine_queryset(model.objects.for_member(stand_in)).filter(pk=sentinels["pk"])
            statement = DetailStatement.compile(queryset.order_by()[:2], sentinels)
            if statement is None:
                return super().get_object()
            _DETAIL_STATEMENTS[key] = statement
        values = {"org": membership.org_id, "user": membership.user_id, "pk": pk}
        obj = statement.fetch(model, values, model._default_manager.db)
        self.check_object_permissions(self.request, obj)
        return obj

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["membership"] = getattr(self.request, "membership", None)
        return context


class OrgScopedViewSet(OrgScopedViewMixin, viewsets.GenericViewSet):
    pass


class OrgScopedModelViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
