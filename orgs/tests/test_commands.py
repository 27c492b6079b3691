import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from orgs.models import Membership

pytestmark = pytest.mark.django_db


def run(*args) -> dict:
    out = StringIO()
    call_command(*args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1, "bootstrap commands print exactly one JSON line"
    return json.loads(lines[0])


def client_for(token, org_id):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORG_ID=str(org_id))
    return client


def test_create_org_prints_json_and_the_token_works():
    result = run("create_org", "Acme", "--owner-email", "Owner@Acme.test", "--password", "pw-12345678")
    assert set(result) == {"org_id", "user_id", "token"}
    body = client_for(result["token"], result["org_id"]).get("/api/v1/org").json()
    assert body["name"] == "Acme" and body["role"] == "owner"
    login = APIClient().post(
        "/api/v1/auth/token", {"email": "owner@acme.test", "password": "pw-12345678"}, format="json"
    )
    assert login.status_code == 201


def test_add_member_with_assigned_scope():
    org = run("create_org", "Acme", "--owner-email", "a@acme.test")
    result = run("add_member", str(org["org_id"]), "b@acme.test", "--role", "member", "--scope", "assigned")
    assert set(result) == {"user_id", "token"}
    body = client_for(result["token"], org["org_id"]).get("/api/v1/org").json()
    assert (body["role"], body["data_scope"]) == ("member", "assigned")


def test_add_member_to_unknown_org_fails():
    with pytest.raises(CommandError):
        call_command("add_member", "424242", "x@y.test", stdout=StringIO())


def test_create_org_rejects_unknown_timezone():
    with pytest.raises(CommandError):
        call_command("create_org", "X", "--owner-email", "x@y.test", "--timezone", "Mars/Base", stdout=StringIO())


def test_bootstrap_demo_is_idempotent():
    for _ in range(2):
        out = StringIO()
        call_command("bootstrap_demo", stdout=out)
        result = json.loads(out.getvalue().splitlines()[0])
        assert client_for(result["token"], result["org_id"]).get("/api/v1/org").status_code == 200
        assert "curl -H 'Authorization: Bearer" in out.getvalue()
    assert Membership.objects.filter(org__name="Demo").count() == 1


def test_role_helpers():
    org = run("create_org", "Acme", "--owner-email", "a@acme.test")
    owner = Membership.objects.get(org_id=org["org_id"])
    assert owner.is_admin and not owner.sees_only_assigned
    owner.role, owner.data_scope = "member", "assigned"
    assert not owner.is_admin and owner.sees_only_assigned
