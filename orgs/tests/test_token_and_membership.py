"""The bearer token is checked as knox checks it, reading only that token; the caller's membership
in `X-Org-Id` is then read in the same round trip that sets the claimed org, and the claim is
dropped unless a membership was found."""

import contextlib
import tempfile
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
from orgs.api.auth import BearerTokenAuthentication
from orgs.models import Membership

pytestmark = pytest.mark.django_db


def authenticate(token: str, org_id) -> tuple:
    """Run the authentication as a request would (app role, no org); return its answer and the
    org left set for the rest of the request."""
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_ORG_ID": str(org_id)}
    request = Request(APIRequestFactory().get("/api/v1/org", **headers))
    with transaction.atomic():
        db_security.enter_request(statement_timeout="0")
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


@pytest.mark.parametrize("token", ["\xff\xfe" * 32, "\x00" * 64], ids=["not-utf8", "nul"])
def test_a_token_postgresql_or_utf8_cannot_hold_is_401_not_500(alice, token):
    answer, org_left, verified = authenticate(token, alice.org.id)
    assert answer is None and org_left == "" and verified is None
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORG_ID=str(alice.org.id))
    assert alice.client.get("/api/v1/org").status_code == 401


def test_a_token_without_expiry_is_never_expired_nor_renewed(alice):
    token = AuthToken.objects.get(user=alice.user)
    assert token.expiry is None  # REST_KNOX TOKEN_TTL None: tokens live until revoked
    assert alice.client.get("/api/v1/org").status_code == 200
    assert AuthToken.objects.get(pk=token.pk).expiry is None


def test_a_contact_detail_claims_the_org_after_the_token_with_its_membership_lookup(alice):
    """Role switch; the token with its user (no other token of the user); the org claim sent
    together with the membership lookup; the contact with its tags and custom values in one
    statement (contacts.models.visible_contact). Four round trips, once the fixed statements are
    prepared (the first run of each on a connection adds one round trip to prepare it)."""
    contact = alice.client.post("/api/v1/contacts", {"name": "Ada"}, format="json").json()
    assert alice.client.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    with CaptureQueriesContext(connection) as captured, libpq_trace() as trace:
        assert alice.client.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    sql = [q["sql"] for q in captured.captured_queries]
    test_only = [s for s in sql if s.startswith(("SAVEPOINT", "RELEASE")) or "set_config('role', 'none'" in s]
    statements = [s for s in sql if s not in test_only]
    assert len(statements) == 5, statements
    assert "set_config('role'" in statements[0]
    assert "knox_authtoken" in statements[1] and "t.token_key = " in statements[1]  # prepared, with its user
    assert "app.org_id" in statements[2] and "orgs_membership" in statements[3]  # claimed only after the token
    contact_read = statements[4]
    assert contact_read.startswith('SELECT "id", "org_id"') and "FROM contacts_contact WHERE org_id = " in contact_read
    assert "contacts_contacttag" in contact_read and "contacts_fieldvalue" in contact_read
    assert trace.count("ReadyForQuery") == 4 + len(test_only), trace


def test_a_request_reads_only_the_token_presented_however_many_the_user_has(alice):
    """Knox's own check loads every token of the user on each request (to sweep expired ones): a
    user who signed in a thousand times paid for each. Here the expired ones wait for the daily
    purge, and the presented one is the only token row read."""
    AuthToken.objects.bulk_create(
        [AuthToken(user=alice.user, digest=f"{n:0128x}", token_key=f"{n:015x}") for n in range(300)]
    )
    stale_row, _ = AuthToken.objects.create(user=alice.user, expiry=timedelta(seconds=-1))
    with CaptureQueriesContext(connection) as captured:
        assert alice.client.get("/api/v1/org").status_code == 200
    token_reads = [q["sql"] for q in captured.captured_queries if "knox_authtoken" in q["sql"]]
    assert len(token_reads) == 1 and "WHERE t.token_key = " in token_reads[0], token_reads
    assert AuthToken.objects.filter(pk=stale_row.pk).exists()  # not swept by the request


def test_the_daily_purge_deletes_expired_tokens_only(alice, bob):
    from orgs.tasks import purge_expired_tokens

    stale_row, stale = AuthToken.objects.create(user=alice.user, expiry=timedelta(seconds=-1))
    live_row, live = AuthToken.objects.create(user=bob.user, expiry=timedelta(days=1))
    assert purge_expired_tokens(0) == 1  # the scheduled task's body, as a worker runs it
    assert not AuthToken.objects.filter(pk=stale_row.pk).exists()
    assert AuthToken.objects.filter(pk=live_row.pk).exists()
    assert AuthToken.objects.filter(user=alice.user).count() == 1  # the fixture's, without expiry
    bob.client.credentials(HTTP_AUTHORIZATION=f"Bearer {live}", HTTP_X_ORG_ID=str(bob.org.id))
    assert bob.client.get("/api/v1/org").status_code == 200


@contextlib.contextmanager
def libpq_trace():
    """libpq's protocol trace of the connection, as a list of messages filled in on exit; each
    ReadyForQuery ends one round trip."""
    from psycopg.pq import Trace

    connection.ensure_connection()
    pgconn, messages = connection.connection.pgconn, []
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        try:
            yield messages
        finally:
            pgconn.untrace()
            trace.seek(0)
            messages.extend(line.split("\t")[2] for line in trace if line.count("\t") >= 2)
