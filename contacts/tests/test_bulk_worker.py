"""A bulk action on real worker processes: a worker killed with SIGKILL in the middle of tagging
60,000 contacts, another one finishing it. Every contact is tagged once, and the history and the
change feed hold exactly one entry per contact (a killed step left nothing, none ran twice)."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from contacts.testing import make_contacts
from jobs.tests.test_worker import STALLED_SECONDS, Worker, job_state, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]
CONTACTS = 60_000


def test_a_killed_worker_mid_bulk_action_loses_nothing_and_repeats_nothing(alice, tmp_path):
    make_contacts(alice.org, ({"email": f"p{n}@x.test", "company": "Acme"} for n in range(CONTACTS)))
    query = {"groups": [{"conditions": [{"field": "company", "op": "eq", "value": "Acme"}]}]}
    body = {"query": query, "action": {"add_tags": ["hot"]}, "expected_count": CONTACTS}
    post = alice.client.post("/api/v1/contacts/bulk", body, format="json")
    assert post.status_code == 202, post.content
    job_id = post.json()["job"]["id"]
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]

    first = Worker(logs[0])
    try:
        wait_for(lambda: job_state(job_id)[1] >= 10_000, 300, "the first worker did not commit 10,000", logs[:1])
    finally:
        first.kill()
    killed_at = job_state(job_id)
    assert killed_at[0] == "running" and killed_at[1] < CONTACTS

    time.sleep(STALLED_SECONDS + 1)
    second = Worker(logs[1])
    try:
        wait_for(lambda: job_state(job_id)[0] == "succeeded", 600, "the second worker did not finish", logs)
    finally:
        second.stop()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(DISTINCT ct.contact_id) FROM contacts_contacttag ct "
            "JOIN customization_tag t ON t.org_id = ct.org_id AND t.id = ct.tag_id "
            "WHERE ct.org_id = %s AND t.name = 'hot'",
            [alice.org.id],
        )
        assert cursor.fetchone() == (CONTACTS, CONTACTS)
        cursor.execute(
            "SELECT count(*), count(DISTINCT contact_id) FROM history_contactchange "
            "WHERE org_id = %s AND job_id = %s AND changes = %s::jsonb",
            [alice.org.id, job_id, '{"tags": [[], ["hot"]]}'],
        )
        assert cursor.fetchone() == (CONTACTS, CONTACTS)
    entries, cursor = [], None
    while True:
        page = alice.client.get("/api/v1/changes", {"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
        entries += [e for e in page["results"] if e["job"] == job_id and e["object"] == "contact"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(entries) == len({e["object_id"] for e in entries}) == CONTACTS
