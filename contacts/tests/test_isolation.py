"""The isolation matrix: for every contacts/opportunities endpoint, another org's owner and an
assigned-only member get 404 for data outside their scope and change nothing."""

import pytest

from contacts.models import Contact, Opportunity, visible_contact
from crm.db_security import as_org

pytestmark = pytest.mark.django_db


@pytest.fixture
def target(alice):
    contact = alice.client.post(
        "/api/v1/contacts", {"name": "Secret", "email": "s@a.test", "tags": ["x"]}, format="json"
    ).json()
    opp = alice.client.post(
        "/api/v1/opportunities", {"contact": contact["id"], "name": "Deal", "value": "10.00"}, format="json"
    ).json()
    return contact["id"], opp["id"]


def snapshot():
    return (list(Contact.objects.values().order_by("id")), list(Opportunity.objects.values().order_by("id")))


ENDPOINTS = [
    ("get", "/api/v1/contacts/{c}", None),
    ("patch", "/api/v1/contacts/{c}", {"name": "Pwned"}),
    ("delete", "/api/v1/contacts/{c}", None),
    ("get", "/api/v1/contacts/{c}/opportunities", None),
    ("get", "/api/v1/opportunities/{o}", None),
    ("patch", "/api/v1/opportunities/{o}", {"name": "Pwned"}),
    ("delete", "/api/v1/opportunities/{o}", None),
]


@pytest.mark.parametrize("method,path,body", ENDPOINTS)
@pytest.mark.parametrize("who", ["charlie", "carol"])
def test_outsiders_get_404_and_change_nothing(request, target, method, path, body, who):
    actor = request.getfixturevalue(who)
    before = snapshot()
    url = path.format(c=target[0], o=target[1])
    response = getattr(actor.client, method)(url, body, format="json") if body else getattr(actor.client, method)(url)
    assert response.status_code == 404
    assert "Secret" not in response.content.decode()
    assert snapshot() == before


@pytest.mark.parametrize("who", ["charlie", "carol"])
def test_outsiders_list_nothing(request, target, who):
    actor = request.getfixturevalue(who)
    assert actor.client.get("/api/v1/contacts").json()["count"] == 0
    assert actor.client.get("/api/v1/opportunities").json()["count"] == 0


@pytest.mark.parametrize("who", ["charlie", "carol"])
def test_outsiders_cannot_attach_an_opportunity_to_an_invisible_contact(request, target, who):
    actor = request.getfixturevalue(who)
    before = snapshot()
    response = actor.client.post("/api/v1/opportunities", {"contact": target[0], "name": "X"}, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "contact"
    assert snapshot() == before


@pytest.mark.parametrize(("who", "sees"), [("alice", 3), ("carol", 1), ("charlie", 0)])
def test_the_detail_read_finds_what_the_scoped_queryset_finds(request, alice, carol, who, sees):
    """`GET /contacts/{id}` reads by `visible_contact`, a fixed statement: it must find exactly what
    `Contact.objects.for_member(...)` finds, for the owner, an assigned-only member and another org's
    owner, over contacts assigned to carol, to alice and to nobody, and an id no contact has."""
    ids = [
        alice.client.post("/api/v1/contacts", {"name": name, "assigned_to": user}, format="json").json()["id"]
        for name, user in [
            ("Carol's", carol.membership.user_id),
            ("Alice's", alice.membership.user_id),
            ("Nobody's", None),
        ]
    ]
    membership = request.getfixturevalue(who).membership
    found = 0
    with as_org(membership.org_id):
        for contact_id in [*ids, max(ids) + 1000]:
            expected = Contact.objects.for_member(membership).filter(pk=contact_id).first()
            contact = visible_contact(membership, contact_id)
            assert (contact is None) == (expected is None), (who, contact_id)
            if contact is not None:
                found += 1
                read = {f.attname for f in Contact._meta.concrete_fields} - contact.get_deferred_fields()
                assert {name: getattr(contact, name) for name in read} == {
                    name: getattr(expected, name) for name in read
                }
    assert found == sees
