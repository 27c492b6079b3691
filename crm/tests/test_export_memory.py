"""An export streams in constant memory: 200,000 contacts through a real gunicorn worker, whose
peak RSS (sampled while the client reads) grows by at most 100 MB (DESIGN §5 export); and a
client that goes away mid-way stops the query (DESIGN §4)."""

from __future__ import annotations

import http.client
import threading
import time

import psutil
import pytest
from django.db import connection

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(600)]
ROWS = 200_000
MAX_GROWTH = 100 * 1024 * 1024


def seed(org_id: int) -> None:
    """ROWS contacts with a note each and a tag, in SQL (the test is about the export, not writes)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO contacts_contact (org_id, first_name, last_name, name, email, email_key, company, "
            "source, notes, dnc, folded, search_text, created_at, updated_at) "
            "SELECT %s, 'P', 'Q', 'Person ' || g, 'p' || g || '@example.com', 'p' || g || '@example.com', "
            "'Company ' || (g %% 500), 'seed', repeat('x', 200), false, '{}', '', "
            "now() - g * interval '1 second', now() FROM generate_series(1, %s) g",
            [org_id, ROWS],
        )
        # Fresh statistics (and so fresh plans) before the tag rows: this connection's cached
        # foreign-key checks may have been planned while a test had the table empty, and one that
        # scans the org's index for each of 200,000 rows ran past the test's timeout.
        cursor.execute("ANALYZE contacts_contact")
        cursor.execute("DISCARD PLANS")
        cursor.execute("INSERT INTO customization_tag (org_id, name, created_at) VALUES (%s, 'seeded', now()) "
                       "RETURNING id", [org_id])  # fmt: skip
        (tag_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO contacts_contacttag (org_id, contact_id, tag_id, created_at) "
            "SELECT org_id, id, %s, created_at FROM contacts_contact WHERE org_id = %s",
            [tag_id, org_id],
        )
        cursor.execute("ANALYZE contacts_contact, contacts_contacttag")


def worker_of(master_pid: int) -> psutil.Process:
    children = psutil.Process(master_pid).children()
    assert len(children) == 1, children
    return children[0]


def export(server, token: str, org_id: int) -> tuple[int, int]:
    """Stream `GET /contacts/export` to the end: (status, lines read)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    conn.request(
        "GET", "/api/v1/contacts/export", headers={"Authorization": f"Bearer {token}", "X-Org-Id": str(org_id)}
    )
    response = conn.getresponse()
    lines = 0
    while chunk := response.read(1 << 16):
        lines += chunk.count(b"\n")
    conn.close()
    return response.status, lines


def test_exporting_200000_contacts_keeps_the_worker_memory_flat(live_gunicorn, alice):
    server = live_gunicorn({"WEB_CONCURRENCY": "1", "THROTTLE_RATES": "api=1000/min,search=1000/min"})
    worker = worker_of(server.process.pid)
    assert export(server, alice.token, alice.org.id) == (200, 1)  # warm: the worker has served an export
    seed(alice.org.id)
    baseline = worker.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], worker.memory_info().rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        status, lines = export(server, alice.token, alice.org.id)
    finally:
        done.set()
        sampler.join()
    assert (status, lines) == (200, ROWS + 1)
    growth = peak[0] - baseline
    assert growth <= MAX_GROWTH, f"the worker grew by {growth / 2**20:.0f} MB while streaming {ROWS:,} contacts"
    print(f"export of {ROWS:,} contacts: worker RSS {baseline / 2**20:.0f} MB → peak {peak[0] / 2**20:.0f} MB")

    # A client that reads a little and hangs up: the COPY stops, it does not run to the end.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=300)
    try:
        headers = {"Authorization": f"Bearer {alice.token}", "X-Org-Id": str(alice.org.id)}
        conn.request("GET", "/api/v1/contacts/export", headers=headers)
        assert conn.getresponse().read(1 << 16)
        assert copies_running() == 1
    finally:
        conn.close()  # (a failed check must not leave the worker blocked on this socket)
    deadline = time.monotonic() + 30
    while copies_running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert copies_running() == 0, "the export's COPY kept running after its client left"


def copies_running() -> int:
    """Exports whose COPY runs now: client backends only (a parallel plan's workers show the same query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND backend_type = 'client backend' "
            "AND query LIKE 'COPY (SELECT%%' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]
