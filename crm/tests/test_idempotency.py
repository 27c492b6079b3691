import pytest

from contacts.models import Contact, Opportunity

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts"


def post(actor, body, key, url=URL):
    return actor.client.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_retry_with_same_key_and_body_replays_and_creates_nothing_more(alice):
    first = post(alice, {"name": "Ada", "email": "ada@example.com"}, "k-1")
    again = post(alice, {"name": "Ada", "email": "ada@example.com"}, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Contact.objects.count() == 1


def test_same_key_with_another_body_is_422(alice):
    post(alice, {"name": "Ada"}, "k-2")
    response = post(alice, {"name": "Grace"}, "k-2")
    assert response.status_code == 422
    assert response.json()["errors"][0] == {
        "code": "idempotency_key_reused",
        "attr": "Idempotency-Key",
        "detail": "This Idempotency-Key was used with a different request.",
    }
    assert Contact.objects.count() == 1


def test_keys_are_scoped_per_user_and_org(alice, bob, charlie):
    post(alice, {"name": "Ada"}, "shared")
    assert post(bob, {"name": "Ada"}, "shared").status_code == 201
    assert post(charlie, {"name": "Ada"}, "shared").status_code == 201
    assert Contact.objects.count() == 3


def test_key_in_flight_is_409(alice):
    from crm.models import IdempotencyRecord

    # Claim the key the way the first request of a pair does, before it has answered.
    first = alice.client.post(URL, {"name": "Ada"}, format="json", HTTP_IDEMPOTENCY_KEY="probe")
    IdempotencyRecord.objects.filter(key="probe").update(state=IdempotencyRecord.State.IN_FLIGHT)
    response = post(alice, {"name": "Ada"}, "probe")
    assert first.status_code == 201 and response.status_code == 409
    assert response.json()["errors"][0]["code"] == "idempotency_key_in_flight"
    assert Contact.objects.count() == 1


def test_failed_request_frees_the_key(alice):
    assert post(alice, {"email": "bad"}, "k-3").status_code == 422
    assert post(alice, {"email": "bad"}, "k-3").status_code == 422
    assert Contact.objects.count() == 0


def test_malformed_key_is_400(alice):
    assert post(alice, {"name": "Ada"}, "x" * 300).status_code == 400


def test_opportunities_honour_the_key(alice):
    contact = post(alice, {"name": "Ada"}, "c").json()
    for _ in range(2):
        assert post(alice, {"contact": contact["id"], "name": "Deal"}, "o", "/api/v1/opportunities").status_code == 201
    assert Opportunity.objects.count() == 1


def test_expired_keys_are_forgotten(alice):
    from datetime import timedelta

    from django.utils import timezone

    from crm.models import IdempotencyRecord

    post(alice, {"name": "Ada"}, "old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    response = post(alice, {"name": "Ada"}, "old")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Contact.objects.count() == 2
