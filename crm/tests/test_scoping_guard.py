"""Scoping guard: every org-scoped route has isolation cases for charlie (other org) and carol (assigned-only).

Routes come from the URL configuration (walked recursively); a route is org-scoped when its view's
permission classes include IsOrgMember. Cases come from the isolation modules below, each read from
the very objects its tests are parametrized with (checked here), so declarations cannot drift.
"""

from __future__ import annotations

import importlib

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from crm.api.permissions import IsOrgMember

ACTORS = ("charlie", "carol")
DUMMY_IDS = {"c": 1, "o": 1, "tag": 1, "folder": 1, "field": 1}


def join(prefix: str, pattern) -> str:
    part = str(pattern.pattern)
    return prefix + (part[1:] if part.startswith("^") else part)  # as ResolverMatch.route spells it


def walk(resolver, prefix=""):
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from walk(pattern, join(prefix, pattern))
        elif isinstance(pattern, URLPattern):
            yield join(prefix, pattern), pattern.callback


def org_scoped_routes(urlconf=None) -> set[str]:
    routes = set()
    for route, callback in walk(get_resolver(urlconf)):
        view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
        perms = getattr(view, "permission_classes", ()) or ()
        if any(isinstance(p, type) and issubclass(p, IsOrgMember) for p in perms):
            routes.add(route)
    return routes


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


def test_every_org_scoped_route_has_isolation_cases_for_both_actors():
    assert len(org_scoped_routes()) >= 20
    assert missing_cases() == []


def test_guard_fails_on_a_route_without_cases(monkeypatch):
    """A new org-scoped route with no declared cases is reported."""
    import sys
    import types

    from django.urls import clear_url_caches, path
    from rest_framework.views import APIView

    from crm.api.viewsets import OrgScopedViewMixin

    class DummyView(OrgScopedViewMixin, APIView):
        def get(self, request):  # pragma: no cover - never called
            raise AssertionError

    module = types.ModuleType("crm_guard_dummy_urls")
    module.urlpatterns = [*importlib.import_module("crm.urls").urlpatterns, path("api/v1/dummy", DummyView.as_view())]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    clear_url_caches()
    try:
        missing = missing_cases(module.__name__)
    finally:
        clear_url_caches()
    assert missing == ["api/v1/dummy (no case for charlie, carol)"]


@pytest.mark.parametrize("route", ["api/v1/contacts/<str:pk>/tags", "api/v1/tags/(?P<pk>[^/.]+)$"])
def test_known_routes_are_seen_as_org_scoped(route):
    assert route in org_scoped_routes()
