"""Input a client can send that once answered 500 (issue 16, finding 5): each is a clear 4xx now,
and writes nothing it should not."""

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from contacts.models import Contact

pytestmark = pytest.mark.django_db

OVERFLOWING = "0001-01-01T00:30:00+01:00"  # 23:30 on the day before year 1 in UTC
LONE_SURROGATE = '"\\udcff"'


@pytest.fixture
def fields(alice):
    for key, data_type in (("when", "datetime"), ("day", "date"), ("txt", "text")):
        created = alice.client.post(
            "/api/v1/custom-fields", {"name": key, "key": key, "data_type": data_type}, format="json"
        )
        assert created.status_code == 201


def condition(field, op, value):
    return {"query": {"groups": [{"conditions": [{"field": field, "op": op, "value": value}]}]}}


@pytest.mark.parametrize(
    "field, value",
    [
        ("created_at", OVERFLOWING),
        ("custom.when", OVERFLOWING),
        ("custom.day", OVERFLOWING),
        ("custom.when", "9999-12-31T23:30:00-01:00"),
    ],
)
def test_search_values_that_overflow_utc_are_a_422(alice, fields, field, value):
    response = alice.client.post("/api/v1/contacts/search", condition(field, "gt", value), format="json")
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["attr"] == "query.groups.0.conditions.0.value"
    assert "range" in error["detail"]


def test_an_instant_with_no_date_in_the_orgs_time_zone_is_a_422(alice, fields):
    alice.org.timezone = "America/New_York"
    alice.org.save(update_fields=["timezone"])
    body = condition("custom.day", "gt", "0001-01-01T01:00:00Z")  # still year 0 in New York
    response = alice.client.post("/api/v1/contacts/search", body, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "out_of_range"


def test_a_custom_value_that_overflows_utc_is_a_422_and_writes_nothing(alice, fields):
    response = alice.client.post("/api/v1/contacts", {"name": "A", "custom": {"when": OVERFLOWING}}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "custom.when"
    assert not Contact.objects.filter(org=alice.org).exists()


def test_a_saved_view_with_an_overflowing_value_is_a_422(alice):
    view = {"name": "v", **condition("created_at", "lt", OVERFLOWING)}
    response = alice.client.put("/api/v1/contacts/views", {"views": [view]}, format="json")
    assert response.status_code == 422


def test_an_overflowing_value_in_a_json_import_is_that_rows_error(alice, fields):
    rows = [{"name": "Kept"}, {"name": "Bad", "custom": {"when": OVERFLOWING}}]
    response = alice.client.post("/api/v1/contacts/import", {"contacts": rows}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["failed"]) == (1, 1)
    assert body["errors"][0]["row"] == 2 and body["errors"][0]["field"] == "custom.when"
    assert list(Contact.objects.filter(org=alice.org).values_list("name", flat=True)) == ["Kept"]


def test_an_overflowing_value_in_a_csv_import_is_that_rows_error(alice, fields):
    csv = f"name,custom.when\nKept,2020-01-01T00:00:00Z\nBad,{OVERFLOWING}\n"
    response = alice.client.post("/api/v1/contacts/import", csv, content_type="text/csv")
    assert response.status_code == 200
    assert (response.json()["created"], response.json()["failed"]) == (1, 1)


@pytest.mark.parametrize(
    "path, body, attr",
    [
        ("/api/v1/contacts", '{"name": $}', "name"),
        ("/api/v1/contacts", '{"name": "x", "tags": ["ok", $]}', "tags.1"),
        ("/api/v1/contacts", '{"name": "x", "custom": {"txt": $}}', "custom.txt"),
        ("/api/v1/contacts", '{"name": "x", "custom": {$: "v"}}', "custom"),
        (
            "/api/v1/contacts/import",
            '{"contacts": [{"name": "ok"}, {"name": $}]}',
            "contacts.1.name",
        ),
        ("/api/v1/contacts/search", '{"q": $}', "q"),
    ],
)
def test_a_lone_surrogate_escape_is_a_422_naming_where_it_is(alice, fields, path, body, attr):
    response = alice.client.post(path, body.replace("$", LONE_SURROGATE), content_type="application/json")
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0] == {"code": "invalid_unicode", "detail": problem["detail"], "attr": attr}
    assert not Contact.objects.filter(org=alice.org).exists()


def test_a_proper_surrogate_pair_is_a_character(alice):
    response = alice.client.post("/api/v1/contacts", '{"name": "Ada \\ud83d\\ude00"}', content_type="application/json")
    assert response.status_code == 201
    assert response.json()["name"] == "Ada \N{GRINNING FACE}"


DEEP = "[" * 100_000 + "]" * 100_000  # 200 KB


@pytest.mark.parametrize("path", ["/api/v1/contacts", "/api/v1/contacts/search", "/api/v1/contacts/import"])
def test_a_deeply_nested_body_is_a_400(alice, path):
    response = alice.client.post(path, DEEP, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "nested_too_deeply"


def test_a_deeply_nested_body_is_a_400_before_authentication_too(anon):
    response = anon.post("/api/v1/auth/token", DEEP, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("depth", [100, 500, 900])
def test_nesting_the_decoder_takes_is_refused_by_the_field_that_gets_it(alice, fields, depth):
    nested = "[" * depth + "]" * depth
    body = '{"name": "x", "custom": {"txt": $}, "tags": $}'.replace("$", nested)
    response = alice.client.post("/api/v1/contacts", body, content_type="application/json")
    assert 400 <= response.status_code < 500
    response = alice.client.post(
        "/api/v1/contacts/search", '{"query": $}'.replace("$", nested), content_type="application/json"
    )
    assert 400 <= response.status_code < 500


def test_more_than_100_files_is_a_413(alice):
    files = {f"f{n}": SimpleUploadedFile(f"f{n}.csv", b"name\nx\n") for n in range(101)}
    response = alice.client.post("/api/v1/contacts/import", files)
    assert response.status_code == 413
    assert "100 files" in response.json()["detail"]


def test_more_than_10000_form_fields_is_a_413(alice):
    response = alice.client.post("/api/v1/contacts/import", {f"k{n}": "v" for n in range(10_001)})
    assert response.status_code == 413
    assert "10000 form fields" in response.json()["detail"]


def unkeyed_cursor(values) -> str:
    """The format cursors had before they were signed: anyone could build one."""
    raw = json.dumps({"s": "0" * 12, "v": values}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "values", [[{"t": "2020-01-01T00:00:00+00:00"}, "not-an-id"], [{"t": "NaN"}, 1], [float("nan"), 1]]
)
def test_a_hand_made_cursor_is_a_422(alice, values):
    for response in (
        alice.client.get("/api/v1/contacts", {"cursor": unkeyed_cursor(values)}),
        alice.client.post("/api/v1/contacts/search", {"cursor": unkeyed_cursor(values)}, format="json"),
    ):
        assert response.status_code == 422
        assert response.json()["errors"][0]["code"] == "invalid_cursor"


def test_a_tampered_cursor_is_a_422_and_a_real_one_pages(alice):
    for n in range(3):
        alice.client.post("/api/v1/contacts", {"name": f"C{n}"}, format="json")
    first = alice.client.get("/api/v1/contacts", {"limit": 2}).json()
    cursor = first["next_cursor"]
    second = alice.client.get("/api/v1/contacts", {"limit": 2, "cursor": cursor})
    assert second.status_code == 200 and len(second.json()["results"]) == 1
    payload, _, signature = cursor.rpartition(":")
    forged = payload[:-1] + ("A" if payload[-1] != "A" else "B") + ":" + signature
    assert alice.client.get("/api/v1/contacts", {"limit": 2, "cursor": forged}).status_code == 422
