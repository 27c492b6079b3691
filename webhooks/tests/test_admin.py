"""The admin's webhooks and delivery log: staff see every org's, never a secret; a URL changed there is
checked as the API checks it; reactivating or retrying resumes delivery."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from orgs.models import Membership
from webhooks.models import Delivery, Webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def disabled(org_a):
    webhook = Webhook.objects.create(
        org=org_a, url="https://93.184.215.14/hook", events=["*"], secret="whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=",
        active=False, disabled_reason="Disabled on 2026-12-04 09:31 UTC: Deliveries failed for 72 hours.",
    )  # fmt: skip
    Delivery.objects.create(
        org=org_a, webhook=webhook, message_id="msg_failed", first_seq=1, first_part=0, first_id=1, last_seq=1,
        last_part=2, last_id=0, entry_count=3, status=Delivery.Status.FAILED, attempts=17, response_code=503,
        error="HTTP 503: down",
    )  # fmt: skip
    return webhook


def test_staff_see_webhooks_and_their_deliveries_never_the_secret(staff, disabled):
    listing = staff.get("/admin/webhooks/webhook/")
    assert listing.status_code == 200 and "93.184.215.14" in listing.content.decode()
    page = staff.get(f"/admin/webhooks/webhook/{disabled.pk}/change/").content.decode()
    assert "Deliveries failed for 72 hours" in page and "HTTP 503: down" in page and "msg_failed" not in page
    assert disabled.secret not in page and "c2VjcmV0" not in page
    log = staff.get(f"/admin/webhooks/delivery/?webhook__id__exact={disabled.pk}")
    assert log.status_code == 200 and "HTTP 503: down" in log.content.decode()
    assert staff.get("/admin/webhooks/webhook/add/").status_code == 403  # created through the API only


def test_a_url_changed_in_the_admin_is_checked(staff, disabled):
    form = {"url": "http://169.254.169.254/latest/", "active": ""}
    response = staff.post(f"/admin/webhooks/webhook/{disabled.pk}/change/", form)
    assert response.status_code == 200 and "link-local" in response.content.decode()
    assert Webhook.objects.get(pk=disabled.pk).url == "https://93.184.215.14/hook"


def test_reactivating_in_the_admin_resumes_from_the_failed_delivery(staff, disabled):
    form = {"url": disabled.url, "active": "on"}
    response = staff.post(f"/admin/webhooks/webhook/{disabled.pk}/change/", form)
    assert response.status_code == 302
    webhook = Webhook.objects.get(pk=disabled.pk)
    assert (webhook.active, webhook.disabled_reason, webhook.next_attempt_at is not None) == (True, "", True)
    assert Delivery.objects.get(webhook=webhook).status == Delivery.Status.RETRYING


def test_the_retry_action_queues_a_delivery_again(staff, disabled):
    delivery = Delivery.objects.get(webhook=disabled)
    response = staff.post(
        "/admin/webhooks/delivery/", {"action": "retry_selected", "_selected_action": [delivery.pk]}, follow=True
    )
    assert f"Delivery #{delivery.pk} is queued again." in response.content.decode()
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.RETRYING and Webhook.objects.get(pk=disabled.pk).active


def staff_client(org, role) -> Client:
    """A logged-in staff user who is not a superuser, with `role` in `org`."""
    user = get_user_model().objects.create_user(f"{role}@staff.test", f"{role}@staff.test", "pw", is_staff=True)
    Membership.objects.create(org=org, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_staff_who_are_not_superusers_reach_their_own_orgs_webhooks_as_owners_or_admins(org_a, org_b, disabled):
    theirs = Webhook.objects.create(org=org_b, url="https://93.184.215.15/b", events=["*"], secret="whsec_eA==")
    owner = staff_client(org_a, Membership.Role.OWNER)
    listing = owner.get("/admin/webhooks/webhook/").content.decode()
    assert "93.184.215.14" in listing and "93.184.215.15" not in listing
    assert owner.get(f"/admin/webhooks/webhook/{theirs.pk}/change/").status_code in (302, 403, 404)
    member = staff_client(org_a, Membership.Role.MEMBER)
    assert member.get("/admin/webhooks/webhook/").status_code == 403
    assert member.get(f"/admin/webhooks/webhook/{disabled.pk}/change/").status_code in (302, 403, 404)
    assert member.get("/admin/webhooks/delivery/").status_code == 403
