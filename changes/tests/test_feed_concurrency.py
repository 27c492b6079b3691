"""The feed under concurrent writers, through a real server: a consumer polling all along with the
cursor it was given sees every committed change exactly once, in commit order, including those of a
long transaction that commits after shorter ones that started later (DESIGN §4, issue 21)."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import RequestsClient

from changes.feed import decode_cursor
from contacts.models import Contact
from crm.db_security import as_org
from customization.models import Tag

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WRITERS = 4
SECONDS = 4


@pytest.fixture(autouse=True)
def _unthrottled(settings):
    """Four writers and a polling consumer on one token make more requests a minute than its `api`
    rate on a fast machine: a 429 ended the consumer's thread before its last poll. This test is
    about the feed's order, not the rate limit (crm/tests/test_throttling.py)."""
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api": "1000000/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def client_for(actor) -> RequestsClient:
    client = RequestsClient()
    client.headers.update({"Authorization": f"Bearer {actor.token}", "X-Org-Id": str(actor.org.id)})
    return client


def test_a_polling_consumer_sees_every_commit_once_in_commit_order(live_server, alice):
    base = f"{live_server.url}/api/v1"
    seed = client_for(alice).post(f"{base}/contacts", json={"name": "Slow"}).json()["id"]
    deadline = time.monotonic() + SECONDS
    writes: list[tuple[float, float, tuple]] = []  # (started, answered, the entry it must produce)
    lock = threading.Lock()

    def writer(n):
        client = client_for(alice)
        while time.monotonic() < deadline:
            started = time.monotonic()
            response = client.post(f"{base}/contacts", json={"name": f"W{n}"})
            answered = time.monotonic()
            assert response.status_code == 201, response.content
            created = response.json()["id"]
            with lock:
                writes.append((started, answered, ("contact", created, "created")))
            started = time.monotonic()
            response = client.patch(f"{base}/contacts/{created}", json={"company": "Acme"})
            assert response.status_code == 200, response.content
            with lock:
                writes.append((started, time.monotonic(), ("contact", created, "updated")))
        connection.close()

    def long_transaction():
        """Writes first, commits last: its entries get the lowest ids but the latest commit."""
        time.sleep(0.3)
        started = time.monotonic()
        with as_org(alice.org.id):
            Contact.objects.filter(pk=seed).update(company="Written early")
            tag = Tag.objects.create(org_id=alice.org.id, name="slow")
            time.sleep(2)
        committed = time.monotonic()
        with lock:
            writes.append((started, committed, ("contact", seed, "updated")))
            writes.append((started, committed, ("tag", tag.pk, "created")))
        connection.close()

    seen: list[dict] = []
    done = threading.Event()

    def consumer():
        client, cursor = client_for(alice), None
        while True:
            final = done.is_set()  # read before polling: a last poll after every writer finished
            response = client.get(f"{base}/changes", params={"limit": 50, **({"cursor": cursor} if cursor else {})})
            assert response.status_code == 200, response.content
            page = response.json()
            seen.extend(page["results"])
            cursor = page["next_cursor"]
            if final and not page["has_more"]:
                return
            if not page["has_more"]:
                time.sleep(0.02)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    threads.append(threading.Thread(target=long_transaction))
    polling = threading.Thread(target=consumer)
    polling.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    polling.join()

    keys = [(e["object"], e["object_id"], e["event"]) for e in seen]
    keys.remove(("contact", seed, "created"))  # made before the polling started
    assert len({e["id"] for e in seen}) == len(seen), "an entry was delivered twice"
    assert sorted(keys) == sorted(key for _, _, key in writes), "the consumer's list differs from what committed"
    # Commit order: a write answered before another started comes first in the feed.
    place = {key: keys.index(key) for key in keys}
    for _, answered_a, a in writes:
        for started_b, _, b in writes:
            if answered_a < started_b:
                assert place[a] < place[b], f"{a} committed before {b} started, but comes after it"
    # The long transaction's contact entry has a lower row id than entries the consumer saw before it:
    # an order by id would have skipped it.
    slow = next(e for e in seen if (e["object_id"], e["event"]) == (seed, "updated"))
    slow_id = decode_cursor(alice.org.id, slow["id"]).id
    before = seen[: seen.index(slow)]
    assert any(e["object"] == "contact" and decode_cursor(alice.org.id, e["id"]).id > slow_id for e in before)
