"""The isolation matrix: for every contacts/opportunities endpoint, another org's owner and an
assigned-only member get 404 for data outside their scope and change nothing."""

import pytest

from contacts.models import Contact, Opportunity

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
