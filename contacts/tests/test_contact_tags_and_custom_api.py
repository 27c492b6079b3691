"""PUT /contacts/{id}/custom/{key}, POST /contacts/{id}/tags, DELETE /contacts/{id}/tags/{name}."""

import pytest

from contacts.models import Contact
from contacts.testing import make_contact
from customization.models import CustomField, Tag

pytestmark = pytest.mark.django_db


def define(org, key, data_type, options=()):
    return CustomField.objects.create(org=org, key=key, name=key.title(), data_type=data_type, options=list(options))


def put_value(actor, contact, key, value):
    return actor.client.put(f"/api/v1/contacts/{contact.id}/custom/{key}", {"value": value}, format="json")


@pytest.fixture
def contact(alice):
    response = alice.client.post("/api/v1/contacts", {"name": "Ada Lovelace", "tags": ["lead"]}, format="json")
    assert response.status_code == 201
    return Contact.objects.get(pk=response.json()["id"])


# --- custom values: every data type ----------------------------------------------------

ACCEPTED = [
    ("text", "  Enterprise  ", "Enterprise"),
    ("text", 42, "42"),
    ("textarea", "line one\nline two", "line one\nline two"),
    ("number", 42, 42),
    ("number", 4.5, 4.5),
    ("number", "1,250.50", 1250.5),
    ("number", "-3", -3),
    ("number", 7.0, 7),
    ("date", "2026-02-28", "2026-02-28"),
    ("date", "2024-02-29", "2024-02-29"),
    ("datetime", "2026-03-15T09:30:00Z", "2026-03-15T09:30:00.000000Z"),
    ("datetime", "2026-03-15T10:30:00+01:00", "2026-03-15T09:30:00.000000Z"),
    ("datetime", "2026-03-15 09:30", "2026-03-15T09:30:00.000000Z"),
    ("boolean", True, True),
    ("boolean", False, False),
    ("boolean", "yes", True),
    ("single_select", "gold", "Gold"),
    ("single_select", " SILVER ", "Silver"),
    ("multi_select", ["silver", "GOLD", "Gold"], ["Silver", "Gold"]),
    ("multi_select", "gold;silver", ["Gold", "Silver"]),
    ("email", "Billing@ACME.test", "Billing@acme.test"),
    ("phone", "(415) 555-2671", "+14155552671"),
    ("url", "https://acme.test/pricing", "https://acme.test/pricing"),
]

REJECTED = [
    ("text", "x" * 1001),
    ("text", ["a"]),
    ("textarea", "x" * 10001),
    ("number", "abc"),
    ("number", True),
    ("number", "NaN"),
    ("number", 1e16),
    ("number", {"n": 1}),
    ("date", "2026-02-30"),
    ("date", "15/03/2026"),
    ("date", 20260315),
    ("datetime", "2026-03-15"),
    ("datetime", "2026-13-01T00:00:00Z"),
    ("boolean", "maybe"),
    ("boolean", 1),
    ("single_select", "Platinum"),
    ("single_select", ["Gold"]),
    ("multi_select", ["Gold", "Platinum"]),
    ("multi_select", 5),
    ("email", "not-an-email"),
    ("phone", "12"),
    ("url", "ftp://acme.test/x"),
    ("url", "javascript:alert(1)"),
    ("text", "nul\x00byte"),
]

OPTIONS = ["Gold", "Silver"]


@pytest.mark.parametrize(("data_type", "value", "canonical"), ACCEPTED)
def test_values_are_stored_in_canonical_form(alice, contact, data_type, value, canonical):
    define(alice.org, "field", data_type, OPTIONS if data_type.endswith("_select") else ())
    response = put_value(alice, contact, "field", value)
    assert response.status_code == 200, response.json()
    assert response.json() == {"key": "field", "value": canonical}
    contact.refresh_from_db()
    assert contact.custom == {"field": canonical}
    assert alice.client.get(f"/api/v1/contacts/{contact.id}").json()["custom"] == {"field": canonical}


@pytest.mark.parametrize(("data_type", "value"), REJECTED)
def test_values_that_do_not_fit_the_type_are_422_on_value(alice, contact, data_type, value):
    define(alice.org, "field", data_type, OPTIONS if data_type.endswith("_select") else ())
    response = put_value(alice, contact, "field", value)
    assert response.status_code == 422, response.json()
    assert response.json()["errors"][0]["attr"] == "value"
    contact.refresh_from_db()
    assert contact.custom == {}


def test_datetime_without_offset_is_read_in_the_org_timezone(alice, contact):
    alice.org.timezone = "Europe/Paris"
    alice.org.save()
    define(alice.org, "meeting", "datetime")
    response = put_value(alice, contact, "meeting", "2026-07-01T10:00:00")
    assert response.json()["value"] == "2026-07-01T08:00:00.000000Z"


def test_null_clears_a_value_and_keeps_the_others(alice, contact):
    define(alice.org, "plan", "text")
    define(alice.org, "score", "number")
    put_value(alice, contact, "plan", "Pro")
    put_value(alice, contact, "score", 3)
    response = put_value(alice, contact, "plan", None)
    assert response.status_code == 200 and response.json() == {"key": "plan", "value": None}
    contact.refresh_from_db()
    assert contact.custom == {"score": 3}
    assert put_value(alice, contact, "plan", None).status_code == 200  # clearing twice is fine


def test_empty_string_clears_too(alice, contact):
    define(alice.org, "plan", "text")
    put_value(alice, contact, "plan", "Pro")
    assert put_value(alice, contact, "plan", "   ").json()["value"] is None
    contact.refresh_from_db()
    assert contact.custom == {}


def test_undefined_key_is_404(alice, contact):
    assert put_value(alice, contact, "nope", "x").status_code == 404
    assert put_value(alice, contact, "Bad-Key", "x").status_code == 404


def test_missing_value_member_is_422(alice, contact):
    define(alice.org, "plan", "text")
    response = alice.client.put(f"/api/v1/contacts/{contact.id}/custom/plan", {"val": "x"}, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "value"


def test_another_orgs_field_key_is_undefined_here(alice, charlie, contact):
    define(charlie.org, "theirs", "text")
    assert put_value(alice, contact, "theirs", "x").status_code == 404


@pytest.mark.parametrize("actor", ["bob", "alice"])
def test_any_role_may_set_values(request, contact, actor):
    member = request.getfixturevalue(actor)
    define(member.org, "plan", "text")
    assert put_value(member, contact, "plan", "Pro").status_code == 200


def test_assigned_only_member_sets_values_only_on_their_contacts(alice, carol, contact):
    define(alice.org, "plan", "text")
    assert put_value(carol, contact, "plan", "Pro").status_code == 404
    contact.refresh_from_db()
    assert contact.custom == {}
    mine = make_contact(org=alice.org, first_name="Mine", assigned_to=carol.user)
    assert put_value(carol, mine, "plan", "Pro").status_code == 200


def test_other_org_cannot_set_values(alice, charlie, contact):
    define(alice.org, "plan", "text")
    define(charlie.org, "plan", "text")
    assert put_value(charlie, contact, "plan", "Pro").status_code == 404
    assert put_value(charlie, contact, "plan", ["a value that would be a 422"]).status_code == 404
    contact.refresh_from_db()
    assert contact.custom == {}


def test_unknown_contact_is_404(alice):
    define(alice.org, "plan", "text")
    for contact_id in ("999999", "abc"):
        response = alice.client.put(f"/api/v1/contacts/{contact_id}/custom/plan", {"value": "x"}, format="json")
        assert response.status_code == 404


# --- tags ------------------------------------------------------------------------------


def test_adding_tags_normalizes_dedupes_and_fills_the_catalog(bob, contact):
    response = bob.client.post(f"/api/v1/contacts/{contact.id}/tags", {"tags": [" VIP ", "Lead", "vip"]}, format="json")
    assert response.status_code == 200
    assert response.json() == {"tags": ["lead", "vip"]}
    contact.refresh_from_db()
    assert contact.tags == ["lead", "vip"]
    assert set(Tag.objects.for_org(contact.org_id).values_list("name", flat=True)) == {"lead", "vip"}


def test_adding_no_tags_changes_nothing(alice, contact):
    response = alice.client.post(f"/api/v1/contacts/{contact.id}/tags", {"tags": []}, format="json")
    assert response.json() == {"tags": ["lead"]}


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({}, "tags"),
        ({"tags": "vip"}, "tags"),
        ({"tags": ["ok", ""]}, "tags.1"),
        ({"tags": [5]}, "tags.0"),
        ({"tags": ["x" * 65]}, "tags.0"),
    ],
)
def test_bad_tag_bodies_are_422(alice, contact, body, attr):
    response = alice.client.post(f"/api/v1/contacts/{contact.id}/tags", body, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == attr
    contact.refresh_from_db()
    assert contact.tags == ["lead"]


def test_too_many_tags_is_422(alice, contact):
    response = alice.client.post(
        f"/api/v1/contacts/{contact.id}/tags", {"tags": [f"t{i}" for i in range(100)]}, format="json"
    )
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "tags"


def test_removing_a_tag(alice, contact):
    alice.client.post(f"/api/v1/contacts/{contact.id}/tags", {"tags": ["needs review", "vip"]}, format="json")
    response = alice.client.delete(f"/api/v1/contacts/{contact.id}/tags/Needs%20Review")
    assert response.status_code == 200 and response.json() == {"tags": ["lead", "vip"]}
    # idempotent; the tag stays in the catalog
    assert alice.client.delete(f"/api/v1/contacts/{contact.id}/tags/needs%20review").json() == {"tags": ["lead", "vip"]}
    assert Tag.objects.for_org(alice.org.id).filter(name="needs review").exists()


def test_tags_with_slashes_can_be_removed(alice, contact):
    alice.client.post(f"/api/v1/contacts/{contact.id}/tags", {"tags": ["a/b"]}, format="json")
    assert alice.client.delete(f"/api/v1/contacts/{contact.id}/tags/a/b").json() == {"tags": ["lead"]}


def test_assigned_only_member_tags_only_their_contacts(alice, carol, contact):
    assert carol.client.post(f"/api/v1/contacts/{contact.id}/tags", {"tags": ["x"]}, format="json").status_code == 404
    assert carol.client.delete(f"/api/v1/contacts/{contact.id}/tags/lead").status_code == 404
    contact.refresh_from_db()
    assert contact.tags == ["lead"]
    assert not Tag.objects.filter(name="x").exists()
    mine = make_contact(org=alice.org, first_name="Mine", assigned_to=carol.user)
    assert carol.client.post(f"/api/v1/contacts/{mine.id}/tags", {"tags": ["x"]}, format="json").json() == {
        "tags": ["x"]
    }


def test_other_org_cannot_tag_or_untag(alice, charlie, contact):
    assert charlie.client.post(f"/api/v1/contacts/{contact.id}/tags", {"tags": ["x"]}, format="json").status_code == 404
    assert charlie.client.delete(f"/api/v1/contacts/{contact.id}/tags/lead").status_code == 404
    contact.refresh_from_db()
    assert contact.tags == ["lead"]
    assert not Tag.objects.for_org(charlie.org.id).exists()


def test_nul_bytes_in_paths_are_404_or_ignored(alice, contact):
    assert (
        alice.client.put(f"/api/v1/contacts/{contact.id}/custom/a%00b", {"value": "x"}, format="json").status_code
        == 404
    )
    assert (
        alice.client.put(f"/api/v1/contacts/{contact.id}%00/custom/plan", {"value": "x"}, format="json").status_code
        == 404
    )
    assert alice.client.delete(f"/api/v1/contacts/{contact.id}/tags/le%00ad").json() == {"tags": ["lead"]}
