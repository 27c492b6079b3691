"""Base views: org context, scoping and error mapping done once, here.

Subclasses name a `queryset_model` and may refine the scoped queryset in `refine_queryset()`
and refuse an impossible lookup in `check_lookup()`; they may not override `get_queryset()` or
`get_object()` (checked at class creation), so no endpoint can forget the org or the
assigned-only scope, nor find its object by another road.
"""

from rest_framework import viewsets
from rest_framework.permissions import IsAuthenticated

from crm.api.permissions import IsOrgMember

SEALED = {"get_queryset": "refine_queryset", "get_object": "check_lookup"}  # sealed method: its hook


class SealedQuerysetMixin:
    """Refuses a class whose `get_queryset()` or `get_object()` is not the one defined in this module."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, hook in SEALED.items():
            # The first class of the MRO defining it, so a mixin placed before the base is caught too.
            owner = next((klass for klass in cls.__mro__ if name in klass.__dict__), None)
            if owner is not None and owner.__module__ != __name__:
                raise TypeError(
                    f"{cls.__qualname__} must not override {name}() (defined by {owner.__qualname__}); "
                    f"implement {hook}()."
                )


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

    def get_object(self):
        lookup = self.kwargs.get(self.lookup_url_kwarg or self.lookup_field)
        if lookup is not None:
            self.check_lookup(lookup)
        return super().get_object()  # from get_queryset(), so scoped like every list

    def check_lookup(self, value: str) -> None:
        """Raise NotFound for a lookup value no row can have, before any SQL (the default accepts all)."""

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
