"""A large request body is spooled to a temporary file by RequestTransactionMiddleware, not held
in memory: an async CSV import of many MB is stored in parts read from the spool, and the
idempotency fingerprint comes from the digest taken while spooling."""

from __future__ import annotations

import pytest
from django.http import HttpRequest

from contacts.models import ImportUpload
from crm.api.middleware import SPOOL_ABOVE_BYTES
from jobs.models import Job

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts/import?async=true"


def big_csv(size: int) -> bytes:
    rows = (b"Contact %07d,contact%07d@example.test\n" % (n, n) for n in range(size // 40 + 1))
    return (b"name,email\n" + b"".join(rows))[:size].rsplit(b"\n", 1)[0] + b"\n"


def post(actor, body: bytes, **headers):
    return actor.client.generic("POST", URL, body, content_type="text/csv", **headers)


def test_a_large_async_csv_is_stored_whole_from_the_spool(alice):
    body = big_csv(SPOOL_ABOVE_BYTES + 3 * 1024 * 1024)
    response = post(alice, body)
    assert response.status_code == 202, response.content
    job = Job.objects.get(pk=response.json()["id"])
    parts = ImportUpload.objects.filter(org_id=job.org_id, job_id=job.pk).order_by("part")
    assert b"".join(bytes(part.data) for part in parts) == body


def test_the_spooled_body_is_never_read_into_memory(alice, monkeypatch):
    """`request.body` is the whole body as one bytes object: a spooled request never asks for it
    (the middleware copies it to the spool in pieces; the import reads parts of the stream)."""
    body_of = HttpRequest.body

    def guarded(request):
        if int(request.META.get("CONTENT_LENGTH") or 0) > SPOOL_ABOVE_BYTES:
            raise AssertionError("the whole body of a spooled request was read into memory")
        return body_of.fget(request)

    monkeypatch.setattr(HttpRequest, "body", property(guarded))
    body = big_csv(2 * SPOOL_ABOVE_BYTES)
    response = post(alice, body, HTTP_IDEMPOTENCY_KEY="big-0")
    assert response.status_code == 202, response.content


def test_idempotency_of_a_spooled_body(alice):
    body = big_csv(SPOOL_ABOVE_BYTES + 1024)
    first = post(alice, body, HTTP_IDEMPOTENCY_KEY="big-1")
    again = post(alice, body, HTTP_IDEMPOTENCY_KEY="big-1")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    other = post(alice, body.replace(b"Contact 0000001,", b"Contact X000001,", 1), HTTP_IDEMPOTENCY_KEY="big-1")
    assert other.status_code == 422
    assert Job.objects.filter(org_id=alice.org.id).count() == 1
