"""Two imports of overlapping contacts at the same time end with one contact per email."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from contacts.models import Contact

URL = "/api/v1/contacts/import"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_overlapping_imports_create_each_email_once(alice, bob):
    shared = [{"email": f"shared{i}@example.com", "tags": ["shared"]} for i in range(200)]
    bodies = {
        alice.token: {
            "contacts": shared + [{"email": f"alice{i}@example.com"} for i in range(50)],
            "options": {"tags": ["from-alice"]},
        },
        bob.token: {
            "contacts": [{"email": f"SHARED{i}@example.com", "company": "Bob Co"} for i in range(200)]
            + [{"email": f"bob{i}@example.com"} for i in range(50)]
        },
    }
    barrier = threading.Barrier(len(bodies))
    results = {}

    def run(token, body):
        client = APIClient()  # one client (and one database connection) per thread
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORG_ID=str(alice.org.id))
        try:
            barrier.wait()
            response = client.post(URL, body, format="json")
            results[token] = (response.status_code, response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in bodies.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert [status for status, _ in results.values()] == [200, 200], results
    counts = [(body["created"], body["updated"], body["failed"]) for _, body in results.values()]
    assert sorted(c[0] for c in counts) == sorted([250, 50]) and all(c[2] == 0 for c in counts)
    emails = [e.lower() for e in Contact.objects.for_org(alice.org.id).values_list("email", flat=True)]
    assert len(emails) == len(set(emails)) == 300
    merged = Contact.objects.for_org(alice.org.id).get(email__iexact="shared7@example.com")
    assert merged.company == "Bob Co" and "shared" in merged.tags and "from-alice" in merged.tags
