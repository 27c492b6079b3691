import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def contact(alice):
    return alice.client.post("/api/v1/contacts", {"name": "Ada"}, format="json").json()


def test_opportunity_crud(alice, contact):
    body = {
        "contact": contact["id"],
        "name": "Annual plan",
        "pipeline": "sales",
        "stage": "proposal",
        "value": "1500.5",
        "currency": "EUR",
    }
    created = alice.client.post("/api/v1/opportunities", body, format="json")
    assert created.status_code == 201
    opp = created.json()
    assert opp["value"] == "1500.50" and opp["status"] == "open" and opp["currency"] == "EUR"
    updated = alice.client.patch(f"/api/v1/opportunities/{opp['id']}", {"status": "won"}, format="json").json()
    assert updated["status"] == "won" and updated["name"] == "Annual plan"
    listed = alice.client.get(f"/api/v1/contacts/{contact['id']}/opportunities").json()
    assert [o["id"] for o in listed["results"]] == [opp["id"]]
    assert alice.client.get("/api/v1/opportunities?status=won").json()["count"] == 1
    assert alice.client.delete(f"/api/v1/opportunities/{opp['id']}").status_code == 204


@pytest.mark.parametrize(
    "field,value",
    [("status", "maybe"), ("value", "12.345"), ("value", "abc"), ("currency", "euro"), ("name", ""), ("contact", "x")],
)
def test_invalid_opportunity_is_422(alice, contact, field, value):
    body = {"contact": contact["id"], "name": "Deal", field: value}
    response = alice.client.post("/api/v1/opportunities", body, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == field


def test_assigned_only_member_sees_opportunities_of_their_contacts(alice, carol):
    mine = carol.client.post("/api/v1/contacts", {"name": "Mine"}, format="json").json()
    other = alice.client.post("/api/v1/contacts", {"name": "Other"}, format="json").json()
    for c in (mine, other):
        alice.client.post("/api/v1/opportunities", {"contact": c["id"], "name": f"Deal {c['name']}"}, format="json")
    names = [o["name"] for o in carol.client.get("/api/v1/opportunities").json()["results"]]
    assert names == ["Deal Mine"]
