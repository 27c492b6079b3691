"""Scoping guard: every `/api/v1` route is built on the sealed base, and has isolation cases for
charlie (other org) and carol (assigned-only).

Routes come from the URL configuration (walked recursively). Every route under `api/v1/` is
org-scoped except the org-less endpoints named in ORG_LESS; an org-scoped route's view must derive
from `crm.api.viewsets.OrgScopedViewMixin` and still use its `get_queryset()` and `get_object()`.
Cases come from the isolation modules below, each read from the very objects its tests are
parametrized with (checked here), so declarations cannot drift.
"""

from __future__ import annotations

import importlib
import sys
import types

import pytest
from django.urls import URLPattern, URLResolver, clear_url_caches, get_resolver, path, resolve
from rest_framework.generics import GenericAPIView
from rest_framework.views import APIView

from contacts.models import Contact
from crm.api.permissions import IsOrgMember
from crm.api.viewsets import SEALED, OrgScopedViewMixin, OrgScopedViewSet

API_PREFIX = "api/v1/"
# Route names of the endpoints that act before or without an org (no X-Org-Id): these alone may
# be built on something other than the sealed base.
ORG_LESS = {
    "auth-token": "exchanges a password for a token, revokes it",
    "me": "the caller and the orgs they belong to",
    "schema": "the OpenAPI document",
}
ACTORS = ("charlie", "carol")
DUMMY_IDS = dict.fromkeys(
    ("c", "o", "tag", "folder", "field", "job", "trashed", "other", "merge", "webhook", "delivery"), 1
)


def join(prefix: str, pattern) -> str:
    part = str(pattern.pattern)
    return prefix + (part[1:] if part.startswith("^") else part)  # as ResolverMatch.route spells it


def walk(resolver, prefix=""):
    """(route, name, view class, or the function of a function view) for every pattern, recursively."""
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, join(prefix, pattern))
        elif isinstance(pattern, URLPattern):
            callback = pattern.callback
            view = getattr(callback, "cls", None) or getattr(callback, "view_class", None) or callback
            yield join(prefix, pattern), pattern.name, view


def api_routes(urlconf=None):
    return [(route, name, view) for route, name, view in walk(get_resolver(urlconf)) if route.startswith(API_PREFIX)]


def org_scoped_routes(urlconf=None) -> set[str]:
    return {route for route, name, _ in api_routes(urlconf) if name not in ORG_LESS}


def unsealed_routes(urlconf=None) -> list[str]:
    """Each org-scoped route whose view is not built on the sealed base, and why."""
    found = []
    for route, name, view in api_routes(urlconf):
        if name in ORG_LESS:
            continue
        where = f"{route} (name {name!r}, view {view.__module__}.{view.__qualname__})"
        if not isinstance(view, type):
            found.append(f"{where}: a function view, not built on OrgScopedViewMixin")
        elif not issubclass(view, OrgScopedViewMixin):
            found.append(f"{where}: not built on OrgScopedViewMixin")
        else:
            found += [
                f"{where}: {method}() replaced; implement {hook}()"
                for method, hook in SEALED.items()
                if getattr(view, method) is not getattr(OrgScopedViewMixin, method)
            ]
    return sorted(found)


def parametrized_with(module, obj) -> bool:
    """Some test function of `module` is parametrized with exactly this object."""
    for name in dir(module):
        func = getattr(module, name)
        if name.startswith("test_") and callable(func):
            for mark in getattr(func, "pytestmark", []):
                if mark.name == "parametrize" and any(arg is obj for arg in mark.args):
                    return True
    return False


def declared_cases() -> set[tuple[str, str]]:
    """(actor, url) for every isolation case, from the modules' parametrize lists."""
    cases = set()
    legacy = importlib.import_module("contacts.tests.test_isolation")
    test = legacy.test_outsiders_get_404_and_change_nothing
    marks = {mark.args[0]: mark.args[1] for mark in test.pytestmark if mark.name == "parametrize"}
    assert marks["method,path,body"] is legacy.ENDPOINTS, "test_isolation must be parametrized by ENDPOINTS"
    for who in marks["who"]:
        cases |= {(who, path.format(**DUMMY_IDS)) for _, path, _ in legacy.ENDPOINTS}
    matrix = importlib.import_module("crm.tests.test_isolation_matrix")
    assert parametrized_with(matrix, matrix.PARAMS), "test_isolation_matrix must be parametrized by PARAMS"
    cases |= {(who, case.url.format(**DUMMY_IDS)) for who, case in matrix.PARAMS}
    return cases


def missing_cases(urlconf=None) -> list[str]:
    covered: dict[str, set[str]] = {}
    for who, url in declared_cases():
        route = resolve(url.split("?")[0], urlconf).route
        covered.setdefault(route, set()).add(who)
    return sorted(
        f"{route} (no case for {', '.join(a for a in ACTORS if a not in covered.get(route, set()))})"
        for route in org_scoped_routes(urlconf)
        if not set(ACTORS) <= covered.get(route, set())
    )


def test_every_api_route_is_built_on_the_sealed_base():
    assert unsealed_routes() == []


def test_every_org_scoped_route_has_isolation_cases_for_both_actors():
    assert len(org_scoped_routes()) >= 20
    assert missing_cases() == []


def test_org_less_names_are_routes_without_an_org():
    """Each whitelisted name is one route that exists, and none of them asks for an org."""
    routes = [(name, view) for _, name, view in api_routes() if name in ORG_LESS]
    assert sorted(name for name, _ in routes) == sorted(ORG_LESS)
    for name, view in routes:
        assert not any(issubclass(p, IsOrgMember) for p in view.permission_classes), name


@pytest.mark.parametrize("route", ["api/v1/contacts/<str:pk>/tags", "api/v1/tags/(?P<pk>[^/.]+)$", "api/v1/org"])
def test_known_routes_are_seen_as_org_scoped(route):
    assert route in org_scoped_routes()


# --- the guard fails ------------------------------------------------------------------------------


@pytest.fixture
def urlconf_with(monkeypatch):
    """A throwaway URL configuration: the project's plus the patterns given, under api/v1/."""

    def build(*patterns) -> str:
        module = types.ModuleType("crm_guard_dummy_urls")
        module.urlpatterns = [*importlib.import_module("crm.urls").urlpatterns, *patterns]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        clear_url_caches()
        return module.__name__

    yield build
    clear_url_caches()


class ScopedView(OrgScopedViewMixin, APIView):
    def get(self, request):  # pragma: no cover - never called
        raise AssertionError


class PlainView(APIView):
    """Forgot the base (and with it the org and the permission)."""


def function_view(request):  # pragma: no cover - never called
    raise AssertionError


def test_guard_fails_on_a_route_without_cases(urlconf_with):
    urlconf = urlconf_with(path("api/v1/dummy", ScopedView.as_view(), name="dummy"))
    assert unsealed_routes(urlconf) == []
    assert missing_cases(urlconf) == ["api/v1/dummy (no case for charlie, carol)"]


def test_guard_fails_on_a_view_not_built_on_the_base(urlconf_with):
    urlconf = urlconf_with(
        path("api/v1/plain", PlainView.as_view(), name="plain"), path("api/v1/fn", function_view, name="fn")
    )
    assert unsealed_routes(urlconf) == [
        "api/v1/fn (name 'fn', view crm.tests.test_scoping_guard.function_view): a function view, "
        "not built on OrgScopedViewMixin",
        "api/v1/plain (name 'plain', view crm.tests.test_scoping_guard.PlainView): not built on OrgScopedViewMixin",
    ]


def test_guard_fails_on_a_base_view_whose_sealed_methods_were_replaced(urlconf_with):
    """Replaced after class creation, which the base's own check cannot see."""

    class Patched(OrgScopedViewMixin, GenericAPIView):
        queryset_model = Contact

    Patched.get_queryset = lambda self: Contact.objects.all()
    Patched.get_object = lambda self: Contact.objects.get(pk=self.kwargs["pk"])
    urlconf = urlconf_with(path("api/v1/patched/<int:pk>", Patched.as_view(), name="patched"))
    where = "api/v1/patched/<int:pk> (name 'patched', view crm.tests.test_scoping_guard." + Patched.__qualname__ + ")"
    assert unsealed_routes(urlconf) == [
        f"{where}: get_object() replaced; implement check_lookup()",
        f"{where}: get_queryset() replaced; implement refine_queryset()",
    ]


# --- the base refuses overrides at class creation ---------------------------------------------------


@pytest.mark.parametrize(("method", "hook"), list(SEALED.items()))
def test_a_subclass_may_not_override_a_sealed_method(method, hook):
    with pytest.raises(TypeError, match=rf"must not override {method}\(\).*implement {hook}\(\)"):
        type("Overriding", (OrgScopedViewSet,), {method: lambda self: None})


@pytest.mark.parametrize("method", list(SEALED))
def test_nor_may_a_mixin_placed_before_the_base(method):
    mixin = type("Sneaky", (), {method: lambda self: None})
    with pytest.raises(TypeError, match=rf"must not override {method}\(\) \(defined by Sneaky\)"):
        type("Mixed", (mixin, OrgScopedViewSet), {})


def test_nor_may_the_base_come_after_drf_generic_view():
    with pytest.raises(TypeError, match=r"defined by GenericAPIView"):
        type("Reversed", (GenericAPIView, OrgScopedViewMixin), {})
