import pytest
from knox.models import AuthToken

from orgs.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_no_token_is_401_problem(anon, org_a):
    response = anon.get("/api/v1/org", HTTP_X_ORG_ID=str(org_a.id))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 401 and body["errors"][0]["code"] == "not_authenticated"


def test_bad_token_is_401(anon, org_a):
    anon.credentials(HTTP_AUTHORIZATION="Bearer " + "f" * 64, HTTP_X_ORG_ID=str(org_a.id))
    assert anon.get("/api/v1/org").status_code == 401


def test_revoked_token_is_401(alice):
    assert alice.client.get("/api/v1/org").status_code == 200
    assert alice.client.delete("/api/v1/auth/token").status_code == 204
    assert alice.client.get("/api/v1/org").status_code == 401


def test_revoking_in_storage_is_401(alice):
    AuthToken.objects.filter(user=alice.user).delete()
    assert alice.client.get("/api/v1/me").status_code == 401


def test_token_endpoint_issues_a_working_token(anon, alice):
    alice.user.set_password("right-password")
    alice.user.save()
    response = anon.post("/api/v1/auth/token", {"email": "ALICE@a.test", "password": "right-password"}, format="json")
    assert response.status_code == 201
    token = response.json()["token"]
    assert response.json()["user_id"] == alice.user.id
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert anon.get("/api/v1/me").json()["id"] == alice.user.id


def test_tokens_are_stored_hashed(alice):
    stored = AuthToken.objects.get(user=alice.user)
    assert alice.token not in (stored.digest, stored.token_key)


def test_token_endpoint_refuses_wrong_password(anon):
    UserFactory(username="dave@x.test")
    response = anon.post("/api/v1/auth/token", {"email": "dave@x.test", "password": "nope"}, format="json")
    assert response.status_code == 401
    assert "token" not in response.json()


def test_token_endpoint_rejects_bad_body_with_422(anon):
    response = anon.post("/api/v1/auth/token", {"email": "not-an-email"}, format="json")
    assert response.status_code == 422
    attrs = {e["attr"] for e in response.json()["errors"]}
    assert attrs == {"email", "password"}


def test_malformed_json_is_400(anon):
    response = anon.generic("POST", "/api/v1/auth/token", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "malformed_request"


def test_me_lists_memberships_without_org_header(alice, charlie):
    from orgs.models import Membership

    Membership.objects.create(org=charlie.org, user=alice.user, role="member")
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    body = alice.client.get("/api/v1/me").json()
    assert body["email"] == "alice@a.test"
    assert [m["org_id"] for m in body["memberships"]] == sorted([alice.org.id, charlie.org.id])
