"""GET/PUT /contacts/views and applying a saved view with GET /contacts?view=<id>."""

from __future__ import annotations

import datetime as dt

import pytest

from contacts.models import SmartListView
from contacts.testing import make_contact
from customization.models import CustomField

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/views"


def tag_query(tag):
    return {"groups": [{"conditions": [{"field": "tags", "op": "contains", "value": tag}]}]}


def put(actor, views, **headers):
    return actor.client.put(URL, {"views": views}, format="json", **headers)


def test_an_org_without_views_gets_an_empty_set_with_an_etag(alice):
    response = alice.client.get(URL)
    assert response.status_code == 200
    assert response.json() == {"views": []}
    assert response["ETag"].startswith('"')


def test_put_creates_views_and_get_returns_them_by_position(alice):
    response = put(
        alice,
        [
            {"name": "Second", "query": tag_query("b"), "position": 5, "columns": ["name", "email"]},
            {"name": "First", "query": tag_query("a"), "q": "acme", "sort": [{"field": "name"}], "position": 1},
        ],
    )
    assert response.status_code == 200, response.content
    views = response.json()["views"]
    assert [v["name"] for v in views] == ["First", "Second"]
    assert views[0]["sort"] == [{"field": "name", "direction": "asc"}] and views[0]["q"] == "acme"
    assert views[1]["columns"] == ["name", "email"] and views[1]["query"] == tag_query("b")
    again = alice.client.get(URL)
    assert again.json() == response.json() and again["ETag"] == response["ETag"]


def test_put_keeps_updates_creates_and_deletes_in_one_go(alice):
    first = put(alice, [{"name": "Keep"}, {"name": "Drop"}]).json()["views"]
    keep, drop = first
    response = put(alice, [{"id": keep["id"], "name": "Kept and renamed"}, {"name": "New"}])
    assert response.status_code == 200
    views = response.json()["views"]
    assert [v["name"] for v in views] == ["Kept and renamed", "New"]
    assert views[0]["id"] == keep["id"]
    assert not SmartListView.objects.filter(pk=drop["id"]).exists()


def test_etag_changes_with_the_set_and_a_stale_if_match_gets_412_and_changes_nothing(alice, bob):
    etag = put(alice, [{"name": "One"}])["ETag"]
    assert put(alice, [{"name": "One"}, {"name": "Two"}], HTTP_IF_MATCH=etag).status_code == 200
    stale = put(bob, [{"name": "Bob's"}], HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert stale["Content-Type"] == "application/problem+json"
    assert [v["name"] for v in alice.client.get(URL).json()["views"]] == ["One", "Two"]
    current = alice.client.get(URL)["ETag"]
    assert put(bob, [{"name": "Bob's"}], HTTP_IF_MATCH=current).status_code == 200
    assert put(bob, [], HTTP_IF_MATCH="*").status_code == 200
    assert alice.client.get(URL).json() == {"views": []}


def test_invalid_query_in_a_view_is_422_with_its_path_and_nothing_is_saved(alice):
    put(alice, [{"name": "Existing"}])
    response = put(
        alice,
        [
            {"name": "ok"},
            {"name": "also ok", "query": tag_query("x")},
            {
                "name": "bad",
                "query": {"groups": [{"conditions": [{"field": "nope", "op": "eq", "value": "x"}]}]},
                "sort": [{"field": "tags"}],
            },
            {"name": "", "columns": ["name", "bogus"], "position": -1, "extra": 1},
        ],
    )
    assert response.status_code == 422
    attrs = {e["attr"] for e in response.json()["errors"]}
    assert attrs == {
        "views.2.query.groups.0.conditions.0.field",
        "views.2.sort.0.field",
        "views.3.name",
        "views.3.columns.1",
        "views.3.position",
        "views.3.extra",
    }
    assert [v["name"] for v in alice.client.get(URL).json()["views"]] == ["Existing"]


@pytest.mark.parametrize("body", [[], "views", {"views": "x"}, {"views": [1]}, {"other": []}, {}])
def test_malformed_bodies_are_422(alice, body):
    assert alice.client.put(URL, body, format="json").status_code == 422


def test_ids_of_another_org_are_422_and_change_nothing(alice, charlie):
    theirs = put(charlie, [{"name": "Charlie's"}]).json()["views"][0]
    put(alice, [{"name": "Alice's"}])
    response = put(alice, [{"id": theirs["id"], "name": "Hijack"}])
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "views.0.id"
    assert SmartListView.objects.get(pk=theirs["id"]).name == "Charlie's"
    assert [v["name"] for v in alice.client.get(URL).json()["views"]] == ["Alice's"]


def test_duplicate_ids_are_422(alice):
    view = put(alice, [{"name": "One"}]).json()["views"][0]
    response = put(alice, [{"id": view["id"], "name": "a"}, {"id": view["id"], "name": "b"}])
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "views.1.id"


def test_views_are_shared_by_the_org_and_any_role_may_replace_them(alice, bob, carol, charlie):
    put(alice, [{"name": "Team view"}])
    assert [v["name"] for v in bob.client.get(URL).json()["views"]] == ["Team view"]
    assert put(carol, [{"name": "Carol's"}]).status_code == 200
    assert [v["name"] for v in alice.client.get(URL).json()["views"]] == ["Carol's"]
    assert charlie.client.get(URL).json() == {"views": []}


def test_anonymous_is_401(anon):
    assert anon.get(URL).status_code == 401
    assert anon.put(URL, {"views": []}, format="json").status_code == 401


# --- applying a view: GET /contacts?view=<id> -------------------------------------------------


@pytest.fixture
def people(alice, carol):
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    CustomField.objects.create(org=alice.org, key="score", name="Score", data_type="number")

    def make(name, days, **values):
        return make_contact(
            org=alice.org, name=name, search_text=name.lower(), created_at=base + dt.timedelta(days=days), **values
        )

    return [
        make("Ann", 0, tags=["vip"], custom={"score": 3}, assigned_to=carol.user),
        make("Ben", 1, tags=["vip"], custom={"score": 9}),
        make("Cat", 2, tags=["cold"], custom={"score": 5}),
    ]


def listed(actor, **params):
    response = actor.client.get("/api/v1/contacts", params)
    assert response.status_code == 200, response.content
    return [c["name"] for c in response.json()["results"]]


def test_get_contacts_with_a_view_applies_its_query_q_and_sort(alice, people):
    views = put(
        alice,
        [
            {
                "name": "VIP by score",
                "query": tag_query("vip"),
                "sort": [{"field": "custom.score", "direction": "desc"}],
            },
            {"name": "Ann", "q": "ann"},
        ],
    ).json()["views"]
    assert listed(alice, view=views[0]["id"]) == ["Ben", "Ann"]
    assert listed(alice, view=views[0]["id"], ordering="created_at") == ["Ann", "Ben"]  # explicit ordering wins
    assert listed(alice, view=views[1]["id"]) == ["Ann"]


def test_a_view_applied_by_an_assigned_only_member_stays_in_her_scope(alice, carol, people):
    view = put(alice, [{"name": "Everyone", "sort": [{"field": "name"}]}]).json()["views"][0]
    assert listed(carol, view=view["id"]) == ["Ann"]


def test_unknown_or_foreign_view_ids_are_422(alice, charlie, people):
    theirs = put(charlie, [{"name": "Charlie's"}]).json()["views"][0]
    for value in ("999999", "abc", str(theirs["id"]), "1" * 40):
        response = alice.client.get("/api/v1/contacts", {"view": value})
        assert response.status_code == 422, value
        assert response.json()["errors"][0]["attr"] == "view"


def test_a_view_whose_custom_field_was_deleted_still_loads_and_applying_it_names_the_field(alice, people):
    view = put(
        alice,
        [
            {
                "name": "Scored",
                "query": {"groups": [{"conditions": [{"field": "custom.score", "op": "gt", "value": 4}]}]},
            }
        ],
    ).json()["views"][0]
    assert listed(alice, view=view["id"]) == ["Cat", "Ben"]
    CustomField.objects.filter(org=alice.org, key="score").delete()
    loaded = alice.client.get(URL)
    assert loaded.status_code == 200 and loaded.json()["views"][0]["query"] == view["query"]
    response = alice.client.get("/api/v1/contacts", {"view": view["id"]})
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["attr"] == "view.query.groups.0.conditions.0.field"
    assert "custom.score" in error["detail"]


def test_view_names_with_unpaired_surrogates_are_422(alice):
    response = alice.client.put(URL, '{"views": [{"name": "\\ud800"}]}', content_type="application/json")
    assert response.status_code == 422


@pytest.mark.parametrize("columns", [{}, "", 5])
def test_columns_of_the_wrong_type_are_422(alice, columns):
    response = alice.client.put("/api/v1/contacts/views", {"views": [{"name": "V", "columns": columns}]}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "views.0.columns"


def test_null_parts_of_a_view_mean_the_defaults(alice):
    body = {"views": [{"id": None, "name": "V", "query": None, "q": None, "sort": None, "columns": None}]}
    response = alice.client.put("/api/v1/contacts/views", body, format="json")
    assert response.status_code == 200, response.json()
    view = response.json()["views"][0]
    assert (view["query"], view["q"], view["sort"], view["columns"]) == ({"groups": []}, "", [], [])
