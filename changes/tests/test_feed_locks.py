"""One org never waits for another (DESIGN §2) on the feed's own rows: while another org's
transaction holds its feed counter (as a commit being numbered does) and has written changes, this
org's writes, a bulk job and its feed go on. A wait would hang here (the test's timeout fails it)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from changes.models import FeedState
from contacts.models import Contact
from crm.db_security import as_org
from customization.models import Tag
from jobs.tests.helpers import run_jobs

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_another_orgs_open_commit_delays_nothing_here(alice, charlie):
    theirs = charlie.client.post("/api/v1/contacts", {"name": "Theirs"}, format="json").json()["id"]
    ours = [alice.client.post("/api/v1/contacts", {"name": f"N{n}"}, format="json").json()["id"] for n in range(3)]
    held, release = threading.Event(), threading.Event()

    def hold_their_counter():
        with as_org(charlie.org.id):
            FeedState.objects.select_for_update().get(org_id=charlie.org.id)
            Contact.objects.filter(pk=theirs).update(company="Held open")
            Tag.objects.create(org_id=charlie.org.id, name="held")
            held.set()
            release.wait(60)
        connection.close()

    holder = threading.Thread(target=hold_their_counter)
    holder.start()
    try:
        assert held.wait(30)
        cursor = alice.client.get("/api/v1/changes").json()["next_cursor"]
        assert alice.client.patch(f"/api/v1/contacts/{ours[0]}", {"company": "Acme"}, format="json").status_code == 200
        assert alice.client.post("/api/v1/tags", {"name": "vip"}, format="json").status_code == 201
        body = {"ids": ours, "action": {"add_tags": ["vip"]}, "expected_count": 3}
        assert alice.client.post("/api/v1/contacts/bulk", body, format="json").status_code == 202
        run_jobs()
        page = alice.client.get("/api/v1/changes", {"cursor": cursor}).json()
        events = [(e["object"], e["event"], e["source"]) for e in page["results"]]
        assert events == [
            ("contact", "updated", "api"),
            ("tag", "created", "api"),
            *[("contact", "updated", "bulk")] * 3,
        ]
    finally:
        release.set()
        holder.join()
    their_page = charlie.client.get("/api/v1/changes").json()["results"]
    assert [(e["object"], e["event"]) for e in their_page][-2:] == [("contact", "updated"), ("tag", "created")]
