"""Base views: org context, scoping and error mapping done once, here.

Subclasses name a `queryset_model` and may refine the scoped queryset in
`refine_queryset()`; they may not override `get_queryset()` (checked at class
creation), so no endpoint can forget the org or the assigned-only scope.
"""

from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated

from crm.api.permissions import IsOrgMember


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

    def get_serializer_context(self):
        context = super().get_serializer_context()
        context["membership"] = getattr(self.request, "membership", None)
        return context


class OrgScopedViewSet(OrgScopedViewMixin, viewsets.GenericViewSet):
    pass


class OrgScopedModelViewSet(OrgScopedViewMixin, viewsets.ModelViewSet):
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
