"""`GET /changes` through the API: what each write path records, in commit order, and who sees it.

Feed entries are numbered as their transaction commits (a deferred trigger), so these tests commit:
`transaction=True`.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from jobs.tests.helpers import run_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def feed(actor, cursor=None, limit=200):
    params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
    response = actor.client.get("/api/v1/changes", params)
    assert response.status_code == 200, response.content
    return response.json()


def drain(actor, cursor=None, limit=7):
    """Every entry after `cursor`, following `next_cursor` while `has_more`; (entries, last cursor).
    A small page by default, so paging is crossed inside and between transactions."""
    entries = []
    while True:
        page = feed(actor, cursor, limit=limit)
        entries += page["results"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return entries, cursor


def test_contact_lifecycle_is_in_the_feed_in_order(alice):
    created = alice.client.post("/api/v1/contacts", {"name": "Ada", "email": "ada@x.test"}, format="json").json()
    alice.client.patch(f"/api/v1/contacts/{created['id']}", {"company": "Acme"}, format="json")
    alice.client.delete(f"/api/v1/contacts/{created['id']}")
    entries, _ = drain(alice)
    assert [(e["object"], e["object_id"], e["event"]) for e in entries] == [
        ("contact", created["id"], "created"),
        ("contact", created["id"], "updated"),
        ("contact", created["id"], "trashed"),
    ]
    assert entries[1]["changes"] == {"company": ["", "Acme"]}
    assert entries[1]["actor"]["user"] == alice.user.id and entries[1]["source"] == "api"


def test_opportunities_tags_fields_and_views_are_in_the_feed(alice):
    contact = alice.client.post("/api/v1/contacts", {"name": "Ada"}, format="json").json()
    _, start = drain(alice)
    deal = alice.client.post(
        "/api/v1/opportunities", {"contact": contact["id"], "name": "Deal", "stage": "demo"}, format="json"
    ).json()
    alice.client.patch(f"/api/v1/opportunities/{deal['id']}", {"stage": "proposal"}, format="json")
    tag = alice.client.post("/api/v1/tags", {"name": "vip"}, format="json").json()
    alice.client.patch(f"/api/v1/tags/{tag['id']}", {"name": "vvip"}, format="json")
    alice.client.delete(f"/api/v1/tags/{tag['id']}")
    field = alice.client.post(
        "/api/v1/custom-fields", {"key": "plan", "name": "Plan", "data_type": "text"}, format="json"
    ).json()
    saved = alice.client.put("/api/v1/contacts/views", {"views": [{"name": "All", "query": {}}]}, format="json")
    assert saved.status_code == 200, saved.content
    (view,) = saved.json()["views"]
    entries, _ = drain(alice, start)
    assert [(e["object"], e["object_id"], e["event"]) for e in entries] == [
        ("opportunity", deal["id"], "created"),
        ("opportunity", deal["id"], "updated"),
        ("tag", tag["id"], "created"),
        ("tag", tag["id"], "updated"),
        ("tag", tag["id"], "deleted"),
        ("custom_field", field["id"], "created"),
        ("view", view["id"], "created"),
    ]
    assert entries[1]["changes"] == {"stage": ["demo", "proposal"]}
    assert entries[3]["changes"] == {"name": ["vip", "vvip"]}
    assert entries[4]["changes"]["name"] == ["vvip", None]  # a deleted object shows what it was
    assert entries[0]["changes"]["contact_id"] == [None, contact["id"]]


def test_the_cursor_resumes_exactly_after_what_was_seen(alice):
    ids = [alice.client.post("/api/v1/contacts", {"name": f"N{n}"}, format="json").json()["id"] for n in range(5)]
    first = feed(alice, limit=2)
    assert first["has_more"] and [e["object_id"] for e in first["results"]] == ids[:2]
    rest, cursor = drain(alice, first["next_cursor"])
    assert [e["object_id"] for e in rest] == ids[2:]
    assert feed(alice, cursor)["results"] == []  # nothing new: the same cursor again
    later = alice.client.post("/api/v1/contacts", {"name": "Later"}, format="json").json()["id"]
    assert [e["object_id"] for e in feed(alice, cursor)["results"]] == [later]
    # An entry's id is a cursor too: resume right after it.
    assert [e["object_id"] for e in drain(alice, first["results"][0]["id"])[0]] == [*ids[1:], later]


def test_a_set_based_import_writes_one_entry_per_contact(alice):
    rows = [{"email": f"p{n}@x.test", "tags": ["imported"]} for n in range(10_000)]
    response = alice.client.post("/api/v1/contacts/import", {"contacts": rows}, format="json")
    assert response.status_code == 200, response.content
    everything, _ = drain(alice, limit=200)
    assert [(e["object"], e["event"]) for e in everything if e["object"] != "contact"] == [("tag", "created")]
    entries = [e for e in everything if e["object"] == "contact"]
    assert len(entries) == 10_000
    assert {e["event"] for e in entries} == {"created"} and {e["source"] for e in entries} == {"import"}
    assert len({e["object_id"] for e in entries}) == 10_000
    assert entries[0]["changes"]["tags"] == [[], ["imported"]]


def test_a_bulk_action_writes_one_entry_per_contact_with_its_job(alice):
    rows = [{"email": f"p{n}@x.test", "company": "Acme"} for n in range(300)]
    alice.client.post("/api/v1/contacts/import", {"contacts": rows}, format="json")
    _, start = drain(alice, limit=200)
    query = {"groups": [{"conditions": [{"field": "company", "op": "eq", "value": "Acme"}]}]}
    response = alice.client.post(
        "/api/v1/contacts/bulk",
        {"query": query, "action": {"add_tags": ["hot"]}, "expected_count": 300},
        format="json",
    )
    assert response.status_code == 202, response.content
    run_jobs()
    everything, _ = drain(alice, start, limit=200)
    assert [(e["object"], e["event"]) for e in everything if e["object"] != "contact"] == [("tag", "created")]
    entries = [e for e in everything if e["object"] == "contact"]
    assert len(entries) == 300 and {e["job"] for e in entries} == {response.json()["job"]["id"]}
    assert {e["source"] for e in entries} == {"bulk"}
    assert all(e["changes"] == {"tags": [[], ["hot"]]} for e in entries)


def test_an_assigned_only_member_sees_their_contacts_and_the_catalog_only(alice, carol):
    mine = alice.client.post("/api/v1/contacts", {"name": "Mine", "assigned_to": carol.user.id}, format="json").json()
    alice.client.post("/api/v1/contacts", {"name": "Not mine"}, format="json")
    alice.client.post("/api/v1/opportunities", {"contact": mine["id"], "name": "Deal"}, format="json")
    tag = alice.client.post("/api/v1/tags", {"name": "vip"}, format="json").json()
    entries, _ = drain(carol)
    assert [(e["object"], e["event"]) for e in entries] == [
        ("contact", "created"),
        ("opportunity", "created"),
        ("tag", "created"),
    ]
    assert entries[0]["object_id"] == mine["id"] and entries[2]["object_id"] == tag["id"]


def test_another_org_sees_nothing_and_cannot_use_a_cursor_of_this_one(alice, charlie):
    alice.client.post("/api/v1/contacts", {"name": "Ada"}, format="json")
    page = feed(alice)
    assert page["results"]
    assert feed(charlie)["results"] == []
    response = charlie.client.get("/api/v1/changes", {"cursor": page["next_cursor"]})
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "cursor"
    # The cursor says nothing of the other org's activity: charlie's own feed starts from 1.
    charlie.client.post("/api/v1/contacts", {"name": "Charlie's"}, format="json")
    (entry,) = feed(charlie)["results"]
    assert decode(entry["id"]).seq == 1


def decode(cursor):
    from changes.feed import decode_cursor

    raw = __import__("base64").urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    return decode_cursor(int(raw.split(":")[1]), cursor)


@pytest.mark.parametrize("cursor", ["", "nope", "ZjE6MTox", "x" * 201, "ZjI6MToxOjA6MA"])
def test_a_cursor_the_feed_did_not_issue_is_a_422(alice, cursor):
    response = alice.client.get("/api/v1/changes", {"cursor": cursor})
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "cursor"


def test_an_expired_cursor_is_a_410_and_a_fresh_start_reads_what_is_kept(alice, settings):
    from changes import retention

    old = alice.client.post("/api/v1/contacts", {"name": "Old"}, format="json").json()
    stale = feed(alice, limit=1)
    assert stale["results"][0]["object_id"] == old["id"]
    first_cursor = stale["results"][0]["id"]
    assert retention.expire(now=timezone.now() + dt.timedelta(days=settings.CHANGES_DAYS, minutes=1)) == 1
    new = alice.client.post("/api/v1/contacts", {"name": "New"}, format="json").json()
    response = alice.client.get("/api/v1/changes", {"cursor": first_cursor})
    assert response.status_code == 410
    assert "30 days" in response.json()["detail"]
    assert [e["object_id"] for e in feed(alice)["results"]] == [new["id"]]
    # The cursor given after the expired commit still works.
    assert [e["object_id"] for e in feed(alice, stale["next_cursor"])["results"]] == [new["id"]]


def test_a_rolled_back_write_leaves_nothing_and_a_failed_request_neither(alice):
    alice.client.post("/api/v1/contacts", {"name": "Ada", "email": "ada@x.test"}, format="json")
    _, cursor = drain(alice)
    duplicate = alice.client.post("/api/v1/contacts", {"name": "Ada 2", "email": "ada@x.test"}, format="json")
    assert duplicate.status_code == 409
    assert feed(alice, cursor)["results"] == []
