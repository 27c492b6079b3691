"""The bearer token and the caller's membership in `X-Org-Id` are read by one query, in the same
round trip that sets the claimed org; the claim is dropped unless a membership was verified."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from crm import db_security
from crm.api.context import VERIFIED_ORG_ATTR
from orgs.auth import BearerTokenAuthentication
from orgs.models import Membership

pytestmark = pytest.mark.django_db


def authenticate(token: str, org_id) -> tuple:
    """Run the authentication as a request would (app role, no org); return its answer and the
    org left set for the rest of the request."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_ORG_ID": str(org_id)}
    request = Request(APIRequestFactory().get("/api/v1/org", **headers))
    with transaction.atomic():
        db_security.enter_request()
        try:
            answer = BearerTokenAuthentication().authenticate(request)
        except AuthenticationFailed:
            answer = None
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('app.org_id', true)")
            org_left = cursor.fetchone()[0]
        db_security.leave_request()
    return answer, org_left, getattr(request, VERIFIED_ORG_ATTR, None)


def test_a_member_keeps_the_verified_org(alice):
    (user, token), org_left, verified = authenticate(alice.token, alice.org.id)
    assert user == alice.user and token.user_id == alice.user.id
    assert org_left == str(alice.org.id)
    assert verified[0] == alice.org.id and verified[1].pk == alice.membership.pk
    assert verified[1].org.name == alice.org.name and verified[1].user is user


def test_a_non_member_is_authenticated_but_the_org_claim_is_dropped(alice, charlie):
    (user, _), org_left, verified = authenticate(alice.token, charlie.org.id)
    assert user == alice.user
    assert org_left == ""
    assert verified == (charlie.org.id, None)


@pytest.mark.parametrize("mangle", [lambda t: t[:-4] + "0000", lambda t: "f" * len(t)], ids=["same-key", "other"])
def test_a_wrong_token_drops_the_org_claim(alice, mangle):
    wrong = mangle(alice.token)
    assert wrong != alice.token
    answer, org_left, verified = authenticate(wrong, alice.org.id)
    assert answer is None and org_left == "" and verified is None


def test_an_expired_token_is_refused_and_deleted(alice):
    expired_row, expired = AuthToken.objects.create(user=alice.user, expiry=timedelta(seconds=-1))
    answer, org_left, _ = authenticate(expired, alice.org.id)
    assert answer is None and org_left == ""
    assert not AuthToken.objects.filter(pk=expired_row.pk).exists()
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {expired}", HTTP_X_ORG_ID=str(alice.org.id))
    assert alice.client.get("/api/v1/org").status_code == 401


def test_an_inactive_user_is_401_and_keeps_no_org(alice):
    alice.user.is_active = False
    alice.user.save()
    answer, org_left, _ = authenticate(alice.token, alice.org.id)
    assert answer is None and org_left == ""
    assert alice.client.get("/api/v1/org").status_code == 401


def test_a_removed_membership_is_refused_on_the_next_request(alice):
    assert alice.client.get("/api/v1/org").status_code == 200
    Membership.objects.filter(pk=alice.membership.pk).delete()
    assert alice.client.get("/api/v1/org").status_code == 403


def test_a_changed_scope_applies_on_the_next_request(alice, bob):
    contact = alice.client.post("/api/v1/contacts", {"name": "Unassigned"}, format="json").json()
    assert bob.client.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    Membership.objects.filter(pk=bob.membership.pk).update(data_scope=Membership.DataScope.ASSIGNED)
    assert bob.client.get(f"/api/v1/contacts/{contact['id']}").status_code == 404


def test_me_with_an_org_header_still_lists_every_membership(alice, charlie):
    Membership.objects.create(org=charlie.org, user=alice.user, role="member")
    body = alice.client.get("/api/v1/me").json()
    assert [m["org_id"] for m in body["memberships"]] == sorted([alice.org.id, charlie.org.id])


def test_a_contact_detail_is_three_statements_inside_the_transaction(alice):
    """Role switch; org claim + token + user + membership; the contact. (Before: five.)"""
    contact = alice.client.post("/api/v1/contacts", {"name": "Ada"}, format="json").json()
    with CaptureQueriesContext(connection) as captured:
        assert alice.client.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    statements = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    statements = statements[:-1] if "set_config('role', 'none'" in statements[-1] else statements  # test-only reset
    assert len(statements) == 3, statements
    assert "set_config('role'" in statements[0]
    assert "app.org_id" in statements[1] and "knox_authtoken" in statements[1] and "orgs_membership" in statements[1]
    assert statements[2].startswith('SELECT "contacts_contact"."id"')
