"""Overlapping writers through a real gunicorn (issue 16, finding 7): imports, creates, deletes,
per-contact tag adds, tag renames and deletes, all at once. Lock waits are fine; a 500 is not.
A deadlock left by any lock order reruns the request (RequestTransactionMiddleware)."""

import json
import random
import threading
import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SECONDS = 8


def test_overlapping_imports_creates_deletes_and_tag_changes_never_answer_500(live_gunicorn, alice, settings):
    server = live_gunicorn(
        {"WEB_CONCURRENCY": "2", "THROTTLE_RATES": "api=100000/min,import=100000/min,search=100000/min"},
        args=("--threads", "4"),
    )
    headers = {
        "Authorization": f"Bearer {alice.token}",
        "X-Org-Id": str(alice.org.id),
        "Content-Type": "application/json",
    }

    def call(method, path, body=None):
        status, raw, _ = server.request(method, path, json.dumps(body).encode() if body is not None else None, headers)
        answers.append((status, method, path.split("?")[0], raw[:300]))
        return status, (json.loads(raw) if raw and raw[:1] in b"{[" else None)

    answers: list = []
    ids: list[int] = []
    seeded = call(
        "POST", "/api/v1/contacts/import", {"contacts": [{"email": f"p{n}@x.test", "tags": ["hot"]} for n in range(60)]}
    )
    assert seeded[0] == 200
    ids.extend(c["id"] for c in call("GET", "/api/v1/contacts?limit=100&count=none")[1]["results"])
    deadline = time.monotonic() + SECONDS

    def importer(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            rows = [{"email": f"p{rng.randrange(120)}@x.test", "tags": ["hot", "cold"]} for _ in range(40)]
            call("POST", "/api/v1/contacts/import", {"contacts": rows})

    def tagger(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            call("POST", f"/api/v1/contacts/{rng.choice(ids)}/tags", {"tags": [rng.choice(["hot", "cold", "warm"])]})

    def catalog(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            status, body = call("GET", "/api/v1/tags?limit=50")
            if status != 200 or not body["results"]:
                continue
            tag = rng.choice(body["results"])
            if rng.random() < 0.5:
                call(
                    "PATCH",
                    f"/api/v1/tags/{tag['id']}",
                    {"name": tag["name"] + "x" if len(tag["name"]) < 12 else "hot"},
                )
            else:
                call("DELETE", f"/api/v1/tags/{tag['id']}")

    def churn(seed):
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            status, body = call("POST", "/api/v1/contacts", {"name": "Churn", "tags": ["hot", "cold"]})
            if status == 201 and rng.random() < 0.7:
                call("DELETE", f"/api/v1/contacts/{body['id']}")

    workers = [
        threading.Thread(target=work, args=(n,))
        for n, work in enumerate([importer, importer, tagger, tagger, catalog, churn])
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(SECONDS + 120)
    failures = [answer for answer in answers if answer[0] >= 500]
    assert len(answers) > 50
    assert failures == []
