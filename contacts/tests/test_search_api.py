"""POST /contacts/search and GET /contacts/fields through the HTTP API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import SmartListView
from contacts.normalize import build_search_text
from contacts.testing import make_contact
from customization.field_types import OPERATORS_BY_KIND
from customization.models import CustomField

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/search"


def make(org, name, **values):
    values.setdefault(
        "search_text", build_search_text(name, values.get("email"), values.get("phone"), values.get("company", ""))
    )
    return make_contact(org=org, name=name, first_name=name, **values)


@pytest.fixture
def contacts(alice, bob, carol, charlie):
    CustomField.objects.create(org=alice.org, key="score", name="Score", data_type="number")
    CustomField.objects.create(
        org=alice.org, key="tier", name="Tier", data_type="single_select", options=["Gold", "Silver"]
    )
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    return {
        "ann": make(
            alice.org,
            "Ann",
            company="Acme",
            tags=["vip"],
            custom={"score": 5, "tier": "Gold"},
            created_at=base,
            assigned_to=carol.user,
        ),
        "ben": make(
            alice.org,
            "Ben",
            company="Globex",
            tags=["vip", "cold"],
            custom={"score": 50},
            created_at=base + dt.timedelta(days=1),
        ),
        "cat": make(
            alice.org, "Cat", company="Acme", dnc=True, created_at=base + dt.timedelta(days=2), assigned_to=carol.user
        ),
        "dan": make(alice.org, "Dan", email="dan@acme.test", created_at=base + dt.timedelta(days=3)),
        "zed": make(charlie.org, "Zed", company="Acme", tags=["vip"]),
    }


def names(response):
    assert response.status_code == 200, response.content
    return [c["name"] for c in response.json()["results"]]


def where(*conditions):
    return {"query": {"groups": [{"conditions": list(conditions)}]}}


def test_search_answers_the_envelope_with_serialized_contacts(alice, contacts):
    response = alice.client.post(URL, where({"field": "tags", "op": "contains", "value": "vip"}), format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2 and body["limit"] == 50 and body["offset"] == 0
    assert [c["name"] for c in body["results"]] == ["Ben", "Ann"]  # newest first by default
    first = body["results"][0]
    assert set(first) >= {"id", "name", "email", "tags", "custom", "assigned_to", "created_at"}


def test_groups_are_ored_conditions_anded_and_q_anded_on_top(alice, contacts):
    body = {
        "query": {
            "groups": [
                {
                    "conditions": [
                        {"field": "company", "op": "eq", "value": "acme"},
                        {"field": "dnc", "op": "eq", "value": False},
                    ]
                },
                {"conditions": [{"field": "custom.score", "op": "gte", "value": 10}]},
            ]
        }
    }
    assert sorted(names(alice.client.post(URL, body, format="json"))) == ["Ann", "Ben"]
    assert names(alice.client.post(URL, {**body, "q": "globex"}, format="json")) == ["Ben"]


def test_empty_body_returns_every_contact_of_the_org(alice, contacts):
    assert names(alice.client.post(URL, {}, format="json")) == ["Dan", "Cat", "Ben", "Ann"]


def test_member_with_assigned_scope_sees_only_her_contacts(carol, contacts):
    assert names(carol.client.post(URL, {}, format="json")) == ["Cat", "Ann"]
    response = carol.client.post(URL, where({"field": "tags", "op": "contains", "value": "vip"}), format="json")
    assert names(response) == ["Ann"] and response.json()["count"] == 1


def test_other_org_owner_sees_nothing_of_org_a(charlie, contacts):
    response = charlie.client.post(URL, where({"field": "company", "op": "eq", "value": "acme"}), format="json")
    assert names(response) == ["Zed"]
    response = charlie.client.post(URL, where({"field": "custom.score", "op": "gt", "value": 1}), format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "query.groups.0.conditions.0.field"


def test_sort_by_custom_field_puts_empty_last_and_pages_stably(alice, contacts):
    body = {"sort": [{"field": "custom.score", "direction": "desc"}], "limit": 2}
    assert names(alice.client.post(URL, body, format="json")) == ["Ben", "Ann"]
    page2 = alice.client.post(URL, {**body, "offset": 2}, format="json")
    assert names(page2) == ["Dan", "Cat"]  # both empty: tie broken on id, descending
    assert page2.json()["count"] == 4 and page2.json()["offset"] == 2


def test_ties_break_on_id(alice, contacts):
    same = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    extra = [make(alice.org, f"T{i}", created_at=same) for i in range(3)]
    body = {
        "query": where({"field": "name", "op": "starts_with", "value": "t"})["query"],
        "sort": [{"field": "created_at"}],
    }
    assert names(alice.client.post(URL, body, format="json")) == [c.name for c in extra]


def test_one_query_for_the_page_and_one_for_the_count(alice, contacts):
    body = where({"field": "tags", "op": "contains", "value": "vip"}, {"field": "custom.score", "op": "gt", "value": 1})
    with CaptureQueriesContext(connection) as captured:
        response = alice.client.post(URL, body, format="json")
    assert response.status_code == 200
    on_contacts = [q["sql"] for q in captured.captured_queries if 'FROM "contacts_contact"' in q["sql"]]
    assert len(on_contacts) == 2
    assert sum("COUNT(*)" in sql for sql in on_contacts) == 1


@pytest.mark.parametrize(("mode", "expected"), [("none", None), ("exact", 2)])
def test_count_modes(alice, contacts, mode, expected):
    body = {**where({"field": "tags", "op": "contains", "value": "vip"}), "count": mode}
    assert alice.client.post(URL, body, format="json").json()["count"] == expected


def test_estimated_count_is_a_number(alice, contacts):
    response = alice.client.post(URL, {"count": "estimate"}, format="json")
    assert isinstance(response.json()["count"], int)


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "10"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"q": "x" * 201}, "q"),
        ({"q": ["x"]}, "q"),
        ({"sort": [{"field": "nope"}]}, "sort.0.field"),
        ({"sort": [{"field": "name", "direction": "sideways"}]}, "sort.0.direction"),
        ({"sort": [{"field": "tags"}]}, "sort.0.field"),
        ({"query": {"groups": [{"conditions": [{"field": "name", "op": "eq", "value": "x"}]}] * 21}}, "query.groups"),
        (
            {"query": {"groups": [{"conditions": [{"field": "name", "op": "eq", "value": "x"}] * 101}]}},
            "query.groups.0.conditions",
        ),
        ({"query": []}, "query"),
        ({"query": {"groups": "all"}}, "query.groups"),
        ({"bogus": True}, "bogus"),
        (where({"field": "custom.nope", "op": "eq", "value": "x"}), "query.groups.0.conditions.0.field"),
        (where({"field": "custom.tier", "op": "gt", "value": "x"}), "query.groups.0.conditions.0.op"),
        (where({"field": "custom.tier", "op": "eq", "value": "Bronze"}), "query.groups.0.conditions.0.value"),
        (where({"field": "custom.score", "op": "between", "value": [1]}), "query.groups.0.conditions.0.value"),
    ],
)
def test_invalid_requests_are_422_with_attr(alice, contacts, body, attr):
    response = alice.client.post(URL, body, format="json")
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert attr in [e["attr"] for e in response.json()["errors"]]


@pytest.mark.parametrize(
    "field",
    [
        "name'; DROP TABLE contacts_contact; --",
        'custom.score"',
        "custom.score--",
        "custom.__class__",
        "custom__score",
        "email__icontains",
        "custom.",
        "custom.x.y",
        "x" * 10_000,
        "",
    ],
)
def test_hostile_field_names_are_422_never_500(alice, contacts, field):
    for body in (where({"field": field, "op": "eq", "value": "x"}), {"sort": [{"field": field}]}):
        response = alice.client.post(URL, body, format="json")
        assert response.status_code == 422, (field, response.content)


@pytest.mark.parametrize("value", [{"$gt": 1}, [[1]], {"a": {"b": {}}}, "x" * 100_000, None])
def test_nested_or_huge_values_are_422(alice, contacts, value):
    response = alice.client.post(URL, where({"field": "name", "op": "eq", "value": value}), format="json")
    assert response.status_code == 422


@pytest.mark.parametrize("body", [[], "text", 42, [{"query": {}}]])
def test_non_object_bodies_are_422(alice, body):
    response = alice.client.post(URL, body, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] is None


def test_malformed_json_is_400(alice):
    response = alice.client.post(URL, "{nope", content_type="application/json")
    assert response.status_code == 400


def test_anonymous_is_401(anon):
    assert anon.post(URL, {}, format="json").status_code == 401


def test_field_catalog_lists_builtins_and_the_orgs_custom_fields(alice, contacts):
    response = alice.client.get("/api/v1/contacts/fields")
    assert response.status_code == 200
    fields = {f["field"]: f for f in response.json()["fields"]}
    assert {"name", "email", "phone", "tags", "dnc", "assigned_to", "created_at", "updated_at"} <= set(fields)
    assert fields["custom.tier"] == {
        "field": "custom.tier",
        "label": "Tier",
        "type": "single_select",
        "kind": "text",
        "operators": list(OPERATORS_BY_KIND["text"]),
        "sortable": True,
        "options": ["Gold", "Silver"],
    }
    assert fields["custom.score"]["operators"] == list(OPERATORS_BY_KIND["number"])
    assert fields["tags"]["sortable"] is False and fields["created_at"]["type"] == "datetime"


def test_field_catalog_of_another_org_shows_none_of_org_a_custom_fields(charlie, contacts):
    fields = {f["field"] for f in charlie.client.get("/api/v1/contacts/fields").json()["fields"]}
    assert not any(name.startswith("custom.") for name in fields)


def test_every_catalog_field_can_be_filtered_with_every_listed_operator(alice, contacts):
    """NetBox-style "every field has a filter": each (field, op) of the catalog compiles and runs."""
    company = {"field": "company", "op": "eq", "value": "acme"}
    view = SmartListView.objects.create(org=alice.org, name="Acme", query=where(company)["query"])
    samples = {
        "text": "a",
        "tags": "vip",
        "boolean": True,
        "number": 1,
        "date": "2025-01-01",
        "datetime": "2025-01-01",
        "user": alice.user.id,
        "view": view.id,
    }
    for entry in alice.client.get("/api/v1/contacts/fields").json()["fields"]:
        scalar = entry.get("options", [samples[entry["kind"]]])[0]
        for op in entry["operators"]:
            value = {
                "in": [scalar],
                "not_in": [scalar],
                "contains_any": [scalar],
                "contains_all": [scalar],
                "between": [scalar, scalar],
                "within_last": {"amount": 1, "unit": "days"},
                "more_than_ago": {"amount": 1, "unit": "days"},
                "within_next": {"amount": 1, "unit": "days"},
                "more_than_ahead": {"amount": 1, "unit": "days"},
            }.get(op, scalar)
            condition = {"field": entry["field"], "op": op}
            if op not in ("is_empty", "is_not_empty", "today"):
                condition["value"] = value
            response = alice.client.post(URL, where(condition), format="json")
            assert response.status_code == 200, (condition, response.content)
        if entry["sortable"]:
            assert alice.client.post(URL, {"sort": [{"field": entry["field"]}]}, format="json").status_code == 200


def test_schema_documents_the_filter_language(anon):
    import json

    schema = json.loads(anon.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    components = schema["components"]["schemas"]
    for name in (
        "Condition",
        "ConditionRequest",
        "GroupRequest",
        "QueryRequest",
        "SortRequest",
        "SearchRequest",
        "SearchResponse",
        "FieldCatalog",
        "SavedViews",
        "SavedViewsRequest",
    ):
        assert name in components, name
    assert "oneOf" in components["ConditionRequest"]["properties"]["value"]
    assert "within_last" in components["OpEnum"]["enum"]
    operation = schema["paths"]["/api/v1/contacts/search"]["post"]
    assert "422" in operation["responses"]
    assert operation["requestBody"]["content"]["application/json"]["examples"]


@pytest.mark.parametrize(
    "raw",
    [
        '{"query": {"groups": [{"conditions": [{"field": "name", "op": "eq", "value": "\\ud800"}]}]}}',
        '{"query": {"groups": [{"conditions": [{"field": "\\ud800", "op": "eq", "value": "x"}]}]}}',
        '{"query": {"groups": [{"conditions": [{"field": "name", "op": "eq", "value": "x", "\\ud800": 1}]}]}}',
        '{"q": "\\ud800"}',
        '{"q": "a\\u0000b"}',
        '{"\\udfff": 1}',
    ],
)
def test_unpaired_surrogates_and_nul_are_422_never_500(alice, raw):
    response = alice.client.post(URL, raw, content_type="application/json")
    assert response.status_code == 422, response.content
