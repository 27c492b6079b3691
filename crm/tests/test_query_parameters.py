"""Unknown query parameters are a 422 naming them, on every operation of the schema; documented
ones (and `format`) pass to the view."""

import re

import pytest

from crm.api.query_parameters import documented_query_parameters

pytestmark = pytest.mark.django_db

OPERATIONS = [
    (method, re.sub(r"\{[^}]+\}", "1", path), names)  # any id: the check runs before the view
    for path, _, methods in documented_query_parameters()
    for method, names in methods.items()
]


def call(client, method: str, url: str):
    return getattr(client, method.lower())(url, {} if method != "GET" else None, format="json")


@pytest.mark.parametrize(("method", "path", "names"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_an_unknown_parameter_is_a_422_naming_it(alice, method, path, names):
    response = call(alice.client, method, f"{path}?dry_rum=true&zzz=1")
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["type"] == "urn:problem-type:crm:unknown-parameter"
    assert [(e["attr"], e["code"]) for e in body["errors"]] == [
        ("dry_rum", "unknown_parameter"),
        ("zzz", "unknown_parameter"),
    ]


@pytest.mark.parametrize(("method", "path", "names"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_documented_parameters_and_format_reach_the_view(alice, method, path, names):
    query = "&".join(f"{name}=" for name in sorted(names | {"format"}))
    response = call(alice.client, method, f"{path}?{query}")
    if response.status_code == 422:
        assert all(e["code"] != "unknown_parameter" for e in response.json()["errors"]), response.content


def test_the_check_runs_before_authentication(anon):
    response = anon.get("/api/v1/contacts?limt=5")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "limt"


def test_a_misspelled_filter_never_lists_everything(alice):
    response = alice.client.get("/api/v1/contacts?tags=vip")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "tags"


def test_an_undocumented_method_is_the_routers_405_whatever_its_parameters(alice):
    """`/contacts/import` is a literal path: PATCH is not an operation of it, nor of `/contacts/{id}`."""
    response = alice.client.patch("/api/v1/contacts/import?dry_run=true", {}, format="json")
    assert response.status_code == 405
