import pytest

from customization.models import CustomValue

pytestmark = pytest.mark.django_db

VALUES = "/api/v1/custom-values"


def test_put_creates_then_replaces(alice):
    created = alice.client.put(f"{VALUES}/calendar_link", {"value": "https://cal.test/a"}, format="json")
    assert created.status_code == 201
    assert created.json()["key"] == "calendar_link" and created.json()["value"] == "https://cal.test/a"
    replaced = alice.client.put(f"{VALUES}/calendar_link", {"value": "https://cal.test/b"}, format="json")
    assert replaced.status_code == 200 and replaced.json()["value"] == "https://cal.test/b"
    assert CustomValue.objects.get().value == "https://cal.test/b"


def test_list_is_paginated_and_ordered_by_key(alice):
    for key in ("zeta", "alpha"):
        alice.client.put(f"{VALUES}/{key}", {"value": key.upper()}, format="json")
    body = alice.client.get(VALUES).json()
    assert body["count"] == 2 and body["previous"] is None
    assert [(v["key"], v["value"]) for v in body["results"]] == [("alpha", "ALPHA"), ("zeta", "ZETA")]
    assert alice.client.get(f"{VALUES}/alpha").json()["value"] == "ALPHA"


def test_empty_and_long_values(alice):
    assert alice.client.put(f"{VALUES}/blank", {"value": ""}, format="json").status_code == 201
    assert alice.client.put(f"{VALUES}/big", {"value": "x" * 10_000}, format="json").status_code == 201
    too_long = alice.client.put(f"{VALUES}/big", {"value": "x" * 10_001}, format="json")
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["attr"] == "value"


@pytest.mark.parametrize("body", [{}, {"value": None}, {"value": 5}, {"value": ["a"]}, {"value": "a\x00b"}])
def test_bad_values_are_422_on_value(alice, body):
    response = alice.client.put(f"{VALUES}/link", body, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "value"
    assert not CustomValue.objects.exists()


@pytest.mark.parametrize("key", ["Link", "1link", "a-b", "x" * 65, "_x"])
def test_bad_key_is_422_on_key(alice, key):
    response = alice.client.put(f"{VALUES}/{key}", {"value": "v"}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "key"


def test_delete_is_204_then_404(alice):
    alice.client.put(f"{VALUES}/link", {"value": "v"}, format="json")
    assert alice.client.delete(f"{VALUES}/link").status_code == 204
    assert alice.client.delete(f"{VALUES}/link").status_code == 404
    assert alice.client.delete(f"{VALUES}/never").status_code == 404


@pytest.mark.parametrize("actor", ["bob", "carol"])
def test_members_read_but_cannot_write_custom_values(request, alice, actor):
    member = request.getfixturevalue(actor)
    alice.client.put(f"{VALUES}/link", {"value": "v"}, format="json")
    assert member.client.get(VALUES).json()["count"] == 1
    assert member.client.put(f"{VALUES}/link", {"value": "w"}, format="json").status_code == 403
    assert member.client.put(f"{VALUES}/new", {"value": "w"}, format="json").status_code == 403
    assert member.client.delete(f"{VALUES}/link").status_code == 403
    assert list(CustomValue.objects.values_list("key", "value")) == [("link", "v")]


def test_other_org_has_its_own_store(alice, charlie):
    alice.client.put(f"{VALUES}/link", {"value": "alice"}, format="json")
    assert charlie.client.get(VALUES).json()["count"] == 0
    assert charlie.client.get(f"{VALUES}/link").status_code == 404
    assert charlie.client.delete(f"{VALUES}/link").status_code == 404
    assert charlie.client.put(f"{VALUES}/link", {"value": "charlie"}, format="json").status_code == 201
    assert CustomValue.objects.for_org(alice.org.id).get().value == "alice"


def test_nul_in_a_key_is_a_plain_404(alice):
    assert alice.client.get(f"{VALUES}/a%00b").status_code == 404
    assert alice.client.delete(f"{VALUES}/a%00b").status_code == 404
    assert alice.client.put(f"{VALUES}/a%00b", {"value": "v"}, format="json").status_code == 422
