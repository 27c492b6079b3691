import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from contacts.models import Contact, Opportunity
from customization.models import CustomField, Tag

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts"


def create(actor, **body):
    response = actor.client.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


# --- create and normalization ------------------------------------------------------


def test_create_normalizes_every_field(alice):
    body = create(
        alice,
        name="  Ada   King Lovelace ",
        email="Ada@Example.COM",
        phone="(415) 555-2671",
        tags=[" VIP ", "vip", "Replied-Interested"],
        company="Engines",
        dnc=True,
    )
    assert body["first_name"] == "Ada King" and body["last_name"] == "Lovelace"
    assert body["name"] == "Ada   King Lovelace".strip()
    assert body["email"] == "Ada@example.com"
    assert body["phone"] == "+14155552671"
    assert body["tags"] == ["replied-interested", "vip"]  # in name order
    assert body["dnc"] is True and body["custom"] == {} and body["assigned_to"] is None
    assert set(Tag.objects.filter(org=alice.org).values_list("name", flat=True)) == {"vip", "replied-interested"}


def test_display_name_comes_from_first_and_last(alice):
    body = create(alice, first_name="Grace", last_name="Hopper")
    assert body["name"] == "Grace Hopper"


def test_phone_uses_the_org_default_region(alice):
    alice.org.default_region = "GB"
    alice.org.save()
    assert create(alice, phone="020 7946 0958")["phone"] == "+442079460958"


@pytest.mark.parametrize(
    "field,value,code",
    [
        ("email", "not-an-email", "invalid_email"),
        ("phone", "12", "invalid_phone"),
        ("email", 42, "wrong_type"),
        ("tags", "vip", "wrong_type"),
        ("company", "x" * 201, "too_long"),
        ("dnc", "maybe", "wrong_type"),
        ("custom", {"score": 5}, "unknown_custom_field"),
    ],
)
def test_invalid_values_are_422_with_attr(alice, field, value, code):
    response = alice.client.post(URL, {field: value}, format="json")
    assert response.status_code == 422
    error = response.json()["errors"][0]
    expected_attr = "custom.score" if field == "custom" else field
    assert (error["attr"], error["code"]) == (expected_attr, code)
    assert not Contact.objects.exists()


def test_malformed_json_is_400(alice):
    response = alice.client.generic("POST", URL, "{oops", content_type="application/json")
    assert response.status_code == 400


def test_non_object_body_is_422(alice):
    response = alice.client.post(URL, [1, 2], format="json")
    assert response.status_code == 422


def test_server_owned_fields_are_read_only(alice):
    body = create(alice, name="A", id=999999, created_at="2001-01-01T00:00:00Z", org=12345)
    assert body["id"] != 999999 and not body["created_at"].startswith("2001")
    assert Contact.objects.get(pk=body["id"]).org_id == alice.org.id


# --- uniqueness ----------------------------------------------------------------------


def test_duplicate_email_is_409_with_existing_id(alice, bob):
    first = create(alice, email="ada@example.com")
    response = bob.client.post(URL, {"email": "ADA@example.com"}, format="json")
    assert response.status_code == 409
    assert response.json()["existing_id"] == first["id"]
    assert response.json()["errors"][0]["attr"] == "email"


def test_duplicate_email_hides_existing_id_from_assigned_only_member(alice, carol):
    create(alice, email="ada@example.com")
    response = carol.client.post(URL, {"email": "ada@example.com"}, format="json")
    assert response.status_code == 409
    assert "existing_id" not in response.json()


def test_same_email_in_two_orgs_is_fine(alice, charlie):
    create(alice, email="ada@example.com")
    create(charlie, email="ada@example.com")


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_of_one_email_make_one_contact(alice):
    statuses = []
    barrier = threading.Barrier(4)

    def worker():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.token}", HTTP_X_ORG_ID=str(alice.org.id))
        barrier.wait()
        try:
            statuses.append(client.post(URL, {"email": "race@example.com"}, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409, 409, 409]
    assert Contact.objects.filter(email__iexact="race@example.com").count() == 1


# --- read, update, delete --------------------------------------------------------------


def test_patch_changes_only_given_fields(alice):
    contact = create(alice, first_name="Ada", last_name="King", company="Engines", tags=["a"])
    response = alice.client.patch(f"{URL}/{contact['id']}", {"last_name": "Lovelace"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Ada Lovelace" and body["company"] == "Engines" and body["tags"] == ["a"]


def test_patch_name_splits_it(alice):
    contact = create(alice, first_name="Ada", last_name="King")
    body = alice.client.patch(f"{URL}/{contact['id']}", {"name": "Grace Hopper"}, format="json").json()
    assert (body["first_name"], body["last_name"]) == ("Grace", "Hopper")


def test_patch_with_invalid_value_changes_nothing(alice):
    contact = create(alice, email="a@example.com", company="Engines")
    response = alice.client.patch(f"{URL}/{contact['id']}", {"company": "New", "email": "bad"}, format="json")
    assert response.status_code == 422
    assert Contact.objects.get(pk=contact["id"]).company == "Engines"


def test_put_is_not_allowed(alice):
    contact = create(alice, name="A")
    assert alice.client.put(f"{URL}/{contact['id']}", {"name": "B"}, format="json").status_code == 405


def test_delete_moves_the_contact_and_its_opportunities_to_the_trash(alice):
    contact = create(alice, name="A")
    alice.client.post("/api/v1/opportunities", {"contact": contact["id"], "name": "Deal"}, format="json")
    assert alice.client.delete(f"{URL}/{contact['id']}").status_code == 204
    assert not Contact.objects.exists() and not Opportunity.objects.exists()
    assert [e["id"] for e in alice.client.get(f"{URL}/trash").json()["results"]] == [contact["id"]]


def test_unknown_id_is_404(alice):
    assert alice.client.get(f"{URL}/987654").status_code == 404
    assert alice.client.get(f"{URL}/not-a-number").status_code == 404


# --- list filters and paging ------------------------------------------------------------


@pytest.fixture
def roster(alice, bob):
    create(
        alice,
        name="Ada Lovelace",
        email="ada@engines.test",
        phone="+1 415 555 2671",
        company="Engines",
        tags=["vip", "london"],
    )
    create(alice, name="Grace Hopper", email="grace@navy.test", company="Navy", tags=["vip"], dnc=True)
    create(alice, name="Alan Turing", email="alan@bletchley.test", tags=["london"], assigned_to=bob.user.id)


def names(response):
    assert response.status_code == 200, response.json()
    return sorted(c["name"] for c in response.json()["results"])


def test_list_envelope_and_default_order(alice, roster):
    body = alice.client.get(URL).json()
    assert set(body) == {"count", "next", "previous", "next_cursor", "results"}
    assert body["count"] == 3
    assert [c["name"] for c in body["results"]] == ["Alan Turing", "Grace Hopper", "Ada Lovelace"]


@pytest.mark.parametrize(
    "query,expected",
    [
        ("q=LOVE", ["Ada Lovelace"]),
        ("q=navy.test", ["Grace Hopper"]),
        ("q=(415) 555-26", ["Ada Lovelace"]),
        ("q=4155552671", ["Ada Lovelace"]),
        ("q=engines", ["Ada Lovelace"]),
        ("q=nobody-matches-this", []),
        ("tag=vip", ["Ada Lovelace", "Grace Hopper"]),
        ("tag=vip&tag=London", ["Ada Lovelace"]),
        ("dnc=true", ["Grace Hopper"]),
        ("q=a&tag=london&dnc=false", ["Ada Lovelace", "Alan Turing"]),
    ],
)
def test_list_filters(alice, roster, query, expected):
    assert names(alice.client.get(f"{URL}?{query}")) == expected


def test_filter_by_assignee(alice, bob, roster):
    assert names(alice.client.get(f"{URL}?assigned_to={bob.user.id}")) == ["Alan Turing"]


def test_ordering_by_name(alice, roster):
    body = alice.client.get(f"{URL}?ordering=name").json()
    assert [c["name"] for c in body["results"]] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]


@pytest.mark.parametrize(
    "query,attr",
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("ordering=password", "ordering"),
        ("dnc=perhaps", "dnc"),
        ("q=" + "x" * 201, "q"),
        ("assigned_to=abc", "assigned_to"),
    ],
)
def test_bad_list_params_are_422(alice, query, attr):
    response = alice.client.get(f"{URL}?{query}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == attr


def test_paging(alice, roster):
    page = alice.client.get(f"{URL}?limit=2").json()
    assert len(page["results"]) == 2 and page["next"]
    rest = alice.client.get(f"{URL}?limit=2&offset=2").json()
    assert len(rest["results"]) == 1 and rest["previous"]


# --- assigned-only scope ------------------------------------------------------------------


def test_assigned_only_member_creates_contacts_assigned_to_themselves(carol):
    assert create(carol, name="Mine")["assigned_to"] == carol.user.id


def test_assigned_only_member_cannot_assign_to_others(carol, alice):
    response = carol.client.post(URL, {"name": "X", "assigned_to": alice.user.id}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "scope_forbidden"
    mine = create(carol, name="Mine")
    response = carol.client.patch(f"{URL}/{mine['id']}", {"assigned_to": alice.user.id}, format="json")
    assert response.status_code == 422
    assert Contact.objects.get(pk=mine["id"]).assigned_to_id == carol.user.id


def test_assign_to_non_member_is_422(alice, charlie):
    response = alice.client.post(URL, {"name": "X", "assigned_to": charlie.user.id}, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "assigned_to"


def test_member_with_assigned_scope_sees_only_their_contacts(alice, carol, roster):
    create(alice, name="Carol's", assigned_to=carol.user.id)
    assert names(carol.client.get(URL)) == ["Carol's"]


def test_a_write_reads_the_field_catalog_and_the_members_only_when_its_body_needs_them(alice):
    """A PATCH of a company in an org of many fields reads neither (they were a fifth of its CPU)."""
    CustomField.objects.create(org=alice.org, key="plan", name="Plan", data_type="text")
    contact = alice.client.post("/api/v1/contacts", {"name": "Lazy"}, format="json").json()

    def reads(body: dict) -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = alice.client.patch(f"/api/v1/contacts/{contact['id']}", body, format="json")
        assert response.status_code == 200, response.content
        sql = [query["sql"] for query in captured.captured_queries]
        catalog = sum(s.startswith('SELECT "customization_customfield"."id"') for s in sql)
        members = sum(s.startswith('SELECT "orgs_membership"."user_id"') for s in sql)
        return catalog, members

    assert reads({"company": "Acme"}) == (0, 0)
    assert reads({"custom": {"plan": "Pro"}}) == (1, 0)
    assert reads({"assigned_to": alice.user.id}) == (0, 1)
    assert reads({"custom": {"plan": "Team"}, "assigned_to": alice.user.id}) == (1, 1)
