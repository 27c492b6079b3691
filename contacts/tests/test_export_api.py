"""`POST /contacts/export` and `GET /contacts/export`: a smart list streamed as CSV or JSON lines."""

from __future__ import annotations

import csv
import io
import json

import pytest

from contacts.models import SmartListView
from contacts.testing import make_contact
from customization.models import CustomField

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts/export"


def read(response) -> str:
    assert response.status_code == 200, response.content if not response.streaming else ""
    return b"".join(response.streaming_content).decode()


def csv_rows(response) -> list[dict]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(read(response))))


@pytest.fixture
def people(alice, carol):
    CustomField.objects.create(org=alice.org, key="tier", name="Tier", data_type="single_select",
                               options=["Gold", "Silver"])  # fmt: skip
    CustomField.objects.create(org=alice.org, key="langs", name="Langs", data_type="multi_select",
                               options=["en", "fr"])  # fmt: skip
    return [
        make_contact(alice.org, name="Ada Lovelace", email="ada@example.com", phone="+14155550100",
                     tags=["vip", "webinar"], custom={"tier": "Gold", "langs": ["en", "fr"]}),
        make_contact(alice.org, name="=HYPERLINK(1)", company="@acme", notes="-1",
                     assigned_to=carol.user),
        make_contact(alice.org, name="Grace Hopper", email="grace@example.com", company="Navy, US",
                     tags=["vip"], custom={"tier": "Silver"}),
    ]  # fmt: skip


def test_csv_export_of_everything_in_list_order(alice, people):
    rows = csv_rows(alice.client.post(URL, {}, format="json"))
    assert [int(r["id"]) for r in rows] == [c.id for c in reversed(people)]  # newest first
    builtins = ["first_name", "last_name", "name", "email", "phone", "company", "source", "notes", "tags", "dnc"]
    assert list(rows[0]) == ["id", *builtins, "assigned_to", "created_at", "updated_at", "custom.tier", "custom.langs"]
    ada = rows[2]
    assert (ada["tags"], ada["custom.tier"], ada["custom.langs"], ada["dnc"]) == (
        "vip;webinar",
        "Gold",
        "en;fr",
        "false",
    )
    assert ada["phone"] == "'+14155550100"  # a leading + would be a formula to a spreadsheet
    evil = rows[1]
    assert (evil["name"], evil["company"], evil["notes"]) == ("'=HYPERLINK(1)", "'@acme", "'-1")
    assert rows[0]["company"] == "Navy, US"  # quoted by the CSV writer, read back whole


def test_export_holds_exactly_the_search_results(alice, people):
    query = {"groups": [{"conditions": [{"field": "tags", "op": "contains", "value": "vip"}]}]}
    searched = alice.client.post("/api/v1/contacts/search", {"query": query, "q": "ada"}, format="json").json()
    rows = csv_rows(alice.client.post(URL, {"query": query, "q": "ada", "columns": ["id", "email"]}, format="json"))
    assert [int(r["id"]) for r in rows] == [c["id"] for c in searched["results"]] == [people[0].id]
    assert list(rows[0]) == ["id", "email"]


def test_export_of_a_saved_view_takes_its_filter_and_columns(alice, people):
    view = SmartListView.objects.create(
        org=alice.org, name="Gold", position=0, columns=["name", "custom.tier"],
        query={"groups": [{"conditions": [{"field": "custom.tier", "op": "eq", "value": "Gold"}]}]},
    )  # fmt: skip
    rows = csv_rows(alice.client.get(f"{URL}?view={view.id}&format=csv"))  # DESIGN's own link
    assert rows == [{"name": "Ada Lovelace", "custom.tier": "Gold"}]
    posted = csv_rows(alice.client.post(URL, {"view": view.id, "columns": ["id"]}, format="json"))
    assert posted == [{"id": str(people[0].id)}]


def test_export_of_ids_as_json_lines(alice, people):
    response = alice.client.post(URL, {"ids": [people[0].id, people[2].id], "columns": ["id", "tags", "custom.langs"],
                                       "format": "jsonl"}, format="json")  # fmt: skip
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in read(response).splitlines()]
    assert lines == [
        {"columns": ["id", "tags", "custom.langs"]},
        {"id": people[2].id, "tags": ["vip"], "custom.langs": None},
        {"id": people[0].id, "tags": ["vip", "webinar"], "custom.langs": ["en", "fr"]},
    ]


def test_an_assigned_only_member_exports_only_their_contacts(carol, people):
    rows = csv_rows(carol.client.post(URL, {}, format="json"))
    assert [int(r["id"]) for r in rows] == [people[1].id]


def test_another_orgs_caller_exports_nothing_of_this_org(charlie, people):
    assert csv_rows(charlie.client.post(URL, {"ids": [c.id for c in people]}, format="json")) == []


@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({"columns": ["id", "nope"]}, "columns.1", "unknown_column"),
        ({"columns": []}, "columns", "min_length"),
        ({"format": "xlsx"}, "format", "invalid_choice"),
        ({"view": 999999}, "view", "not_found"),
        ({"view": 2**63}, "view", "max_value"),
        ({"ids": [1, 2**64]}, "ids.1", "max_value"),
        ({"query": {"groups": []}, "ids": [1]}, "ids", "conflict"),
        ({"limit": 5}, "limit", "unknown_key"),
        ({"query": {"groups": [{"conditions": [{"field": "nope", "op": "eq", "value": 1}]}]}}, None, None),
    ],
)
def test_bad_export_requests_are_422_naming_the_culprit(alice, people, body, attr, code):
    response = alice.client.post(URL, body, format="json")
    assert response.status_code == 422, body
    if attr is not None:
        errors = {(e["attr"], e["code"]) for e in response.json()["errors"]}
        assert (attr, code) in errors, errors


def test_get_with_format_jsonl_and_bad_values(alice, people):
    lines = read(alice.client.get(f"{URL}?format=jsonl")).splitlines()
    assert json.loads(lines[0])["columns"][0] == "id" and len(lines) == 4
    for query in ("view=0", "view=true", "format=xlsx"):
        response = alice.client.get(f"{URL}?{query}")
        assert response.status_code == 422, query
        assert response["Content-Type"] == "application/problem+json"


def test_get_refuses_parameters_it_does_not_document(alice, people):
    response = alice.client.get(f"{URL}?q=ada")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "unknown_parameter"
