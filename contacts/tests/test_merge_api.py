"""Merging contacts (DESIGN §4 "Nothing is lost"): field winners, tags union, opportunities moved,
the merged ids answering the survivor, undo, scope and concurrent merges."""

import threading

import pytest
from django.db import connection

from contacts.models import Contact, Opportunity
from customization.models import CustomField

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts"


def create(actor, **body):
    response = actor.client.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def merge(actor, body, status=200):
    response = actor.client.post(f"{URL}/merge", body, format="json")
    assert response.status_code == status, response.content
    return response.json()


def deal(actor, contact_id, name):
    response = actor.client.post("/api/v1/opportunities", {"contact": contact_id, "name": name}, format="json")
    assert response.status_code == 201
    return response.json()["id"]


@pytest.fixture
def trio(alice):
    CustomField.objects.create(org=alice.org, key="tier", name="Tier", data_type="text")
    CustomField.objects.create(org=alice.org, key="city", name="City", data_type="text")
    survivor = create(alice, name="Ada Lovelace", email="ada@x.test", tags=["vip"], custom={"tier": "gold"})
    older = create(alice, name="A. Lovelace", phone="+14155552671", company="Engines", tags=["lead"],
                   custom={"city": "London", "tier": "silver"})  # fmt: skip
    newer = create(alice, name="Ada L.", email="ada@work.test", company="Analytical", tags=["lead", "2026"])
    return survivor, older, newer


def test_field_winners_tags_union_and_opportunities_moved(alice, trio):
    survivor, older, newer = trio
    deals = [deal(alice, older["id"], "Old deal"), deal(alice, newer["id"], "New deal")]
    merged = merge(
        alice, {"into": survivor["id"], "from": [older["id"], newer["id"]], "prefer": {"email": newer["id"]}}
    )
    assert merged["id"] == survivor["id"] and isinstance(merged["merge_id"], int)
    assert merged["name"] == "Ada Lovelace"  # the survivor's non-empty value
    assert merged["email"] == "ada@work.test"  # preferred (it was another contact's: now in the trash)
    assert merged["phone"] == "+14155552671"  # empty on the survivor: the only other value
    assert merged["company"] == "Analytical"  # empty on the survivor: the most recently updated other's
    assert merged["tags"] == ["2026", "lead", "vip"]
    assert merged["custom"] == {"tier": "gold", "city": "London"}
    assert set(Opportunity.objects.filter(contact_id=survivor["id"]).values_list("id", flat=True)) == set(deals)
    trash = {e["id"]: e for e in alice.client.get(f"{URL}/trash").json()["results"]}
    assert set(trash) == {older["id"], newer["id"]} and trash[older["id"]]["merged_into"] == survivor["id"]
    assert alice.client.get(URL).json()["count"] == 1


def test_a_merged_id_answers_the_survivor(alice, trio):
    survivor, older, newer = trio
    merge(alice, {"into": survivor["id"], "from": [older["id"]]})
    response = alice.client.get(f"{URL}/{older['id']}")
    assert response.status_code == 200 and response.json()["id"] == survivor["id"]
    merge(alice, {"into": newer["id"], "from": [survivor["id"]]})  # a merge of the survivor: followed
    assert alice.client.get(f"{URL}/{older['id']}").json()["id"] == newer["id"]


def test_prefer_chooses_the_whole_name_and_custom_values(alice, trio):
    survivor, older, _ = trio
    merged = merge(alice, {"into": survivor["id"], "from": [older["id"]],
                           "prefer": {"name": older["id"], "custom.tier": older["id"]}})  # fmt: skip
    assert (merged["name"], merged["first_name"], merged["last_name"]) == ("A. Lovelace", "A.", "Lovelace")
    assert merged["custom"]["tier"] == "silver"


def test_undo_puts_everything_back(alice, trio):
    survivor, older, newer = trio
    deals = {deal(alice, older["id"], "Old deal"): older["id"], deal(alice, newer["id"], "New deal"): newer["id"]}
    before = {c["id"]: alice.client.get(f"{URL}/{c['id']}").json() for c in trio}
    merged = merge(
        alice, {"into": survivor["id"], "from": [older["id"], newer["id"]], "prefer": {"email": newer["id"]}}
    )
    response = alice.client.post(f"{URL}/merges/{merged['merge_id']}/undo")
    assert response.status_code == 200, response.content
    for contact_id, was in before.items():
        now = alice.client.get(f"{URL}/{contact_id}").json()
        assert now["id"] == contact_id
        for field in ("name", "email", "phone", "company", "tags", "custom", "created_at"):
            assert now[field] == was[field], (contact_id, field)
    assert dict(Opportunity.objects.filter(id__in=deals).values_list("id", "contact_id")) == deals
    assert alice.client.get(f"{URL}/trash").json()["count"] == 0
    again = alice.client.post(f"{URL}/merges/{merged['merge_id']}/undo")
    assert again.status_code == 409 and again.json()["errors"][0]["code"] == "already_undone"


def test_undo_is_refused_after_a_later_change_of_a_merged_field(alice, trio):
    survivor, older, _ = trio
    merged = merge(alice, {"into": survivor["id"], "from": [older["id"]]})
    assert alice.client.patch(f"{URL}/{survivor['id']}", {"company": "Mine"}, format="json").status_code == 200
    response = alice.client.post(f"{URL}/merges/{merged['merge_id']}/undo")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "changed_since" and response.json()["fields"] == ["company"]
    assert alice.client.get(f"{URL}/trash").json()["count"] == 1  # nothing undone


def test_a_change_of_a_field_the_merge_did_not_set_does_not_block_undo(alice, trio):
    survivor, older, _ = trio
    merged = merge(alice, {"into": survivor["id"], "from": [older["id"]]})
    assert alice.client.patch(f"{URL}/{survivor['id']}", {"notes": "called"}, format="json").status_code == 200
    assert alice.client.post(f"{URL}/merges/{merged['merge_id']}/undo").status_code == 200
    assert alice.client.get(f"{URL}/{survivor['id']}").json()["notes"] == "called"


def test_scope_a_contact_the_caller_cannot_see_cannot_be_merged(alice, carol, charlie, trio):
    survivor, older, _ = trio
    mine = create(alice, name="Carol's", assigned_to=carol.user.pk)
    response = carol.client.post(f"{URL}/merge", {"into": mine["id"], "from": [older["id"]]}, format="json")
    assert response.status_code == 404
    response = charlie.client.post(f"{URL}/merge", {"into": survivor["id"], "from": [older["id"]]}, format="json")
    assert response.status_code == 404
    assert Contact.objects.filter(pk=older["id"]).exists()
    merged = merge(alice, {"into": survivor["id"], "from": [older["id"]]})
    assert charlie.client.post(f"{URL}/merges/{merged['merge_id']}/undo").status_code == 404
    assert carol.client.post(f"{URL}/merges/{merged['merge_id']}/undo").status_code == 404


@pytest.mark.parametrize(
    "body,attr,code",
    [
        ({"into": 1, "from": [1]}, "from", "contains_into"),
        ({"into": 1, "from": [2, 2]}, "from", "duplicate_ids"),
        ({"into": 1, "from": list(range(2, 13))}, "from", "max_length"),
        ({"into": 1, "from": []}, "from", "min_length"),
        ({"into": 1, "from": [2], "prefer": {"nope": 1}}, "prefer.nope", "unknown_field"),
        ({"into": 1, "from": [2], "prefer": {"email": 3}}, "prefer.email", "not_involved"),
        ({"into": 1, "from": [2], "extra": 1}, "extra", "unknown_key"),
    ],
)
def test_bad_bodies_are_422_and_merge_nothing(alice, body, attr, code):
    response = alice.client.post(f"{URL}/merge", body, format="json")
    assert response.status_code == 422, response.content
    assert (response.json()["errors"][0]["attr"], response.json()["errors"][0]["code"]) == (attr, code)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_concurrent_merges_of_overlapping_sets_one_wins_nothing_lost(live_server, alice):
    a, b, c = (create(alice, name=n, tags=[n.lower()])["id"] for n in ("A", "B", "C"))
    barrier = threading.Barrier(2)
    outcomes = []

    def run(into, source):
        from rest_framework.test import RequestsClient

        client = RequestsClient()
        client.headers.update({"Authorization": f"Bearer {alice.token}", "X-Org-Id": str(alice.org.id)})
        barrier.wait()
        response = client.post(f"{live_server.url}{URL}/merge", json={"into": into, "from": [source]})
        outcomes.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=run, args=(a, b)), threading.Thread(target=run, args=(c, b))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [200, 409]
    live = set(Contact.objects.filter(org=alice.org).values_list("pk", flat=True))
    assert len(live) == 2 and b not in live
    survivor = alice.client.get(f"{URL}/{b}").json()
    assert survivor["id"] in live and "b" in survivor["tags"]


def test_the_merge_is_in_the_history_of_every_contact_involved(alice, trio):
    survivor, older, newer = trio
    merged = merge(alice, {"into": survivor["id"], "from": [older["id"], newer["id"]]})
    (latest, *_) = alice.client.get(f"{URL}/{survivor['id']}/history").json()["results"]
    assert (latest["event"], latest["source"], latest["actor"]["user"]) == ("updated", "merge", alice.user.pk)
    assert latest["changes"]["phone"] == [None, "+14155552671"]
    assert latest["changes"]["tags"] == [["vip"], ["2026", "lead", "vip"]]
    for contact_id in (older["id"], newer["id"]):
        (latest, *_) = alice.client.get(f"{URL}/{contact_id}/history").json()["results"]
        assert (latest["event"], latest["source"]) == ("merged", "merge")
    assert alice.client.post(f"{URL}/merges/{merged['merge_id']}/undo").status_code == 200
    (latest, *_) = alice.client.get(f"{URL}/{older['id']}/history").json()["results"]
    assert (latest["event"], latest["source"]) == ("restored", "restore")
