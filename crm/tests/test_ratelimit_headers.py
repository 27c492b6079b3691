"""`RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) on every API answer,
whatever refused it and at whichever layer, so a client can always pace itself."""

import re

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

POLICY = re.compile(r'^"\w+";q=\d+;w=\d+(, "\w+";q=\d+;w=\d+)*$')
STATE = re.compile(r'^"\w+";r=\d+;t=\d+(, "\w+";r=\d+;t=\d+)*$')


def client(token=None, org=None, scheme="Bearer"):
    c = APIClient()
    headers = {}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"{scheme} {token}"
    if org:
        headers["HTTP_X_ORG_ID"] = str(org)
    c.credentials(**headers)
    return c


def cases(alice):
    """(name, callable returning a response): every layer that answers, every kind of status."""
    org = alice.org.id
    me = alice.client
    contact = me.post("/api/v1/contacts", {"name": "Ada", "email": "ada@example.com"}, format="json").json()
    return [
        ("200 list", 200, lambda: me.get("/api/v1/contacts")),
        ("201 create", 201, lambda: me.post("/api/v1/contacts", {"name": "Grace"}, format="json")),
        ("204 delete", 204, lambda: me.delete(f"/api/v1/contacts/{contact['id']}")),
        ("200 me, no org", 200, lambda: client(alice.token).get("/api/v1/me")),
        ("200 schema, public", 200, lambda: APIClient().get("/api/v1/schema/")),
        ("400 no org header", 400, lambda: client(alice.token).get("/api/v1/contacts")),
        ("400 bad JSON", 400, lambda: me.generic("POST", "/api/v1/contacts", "{", content_type="application/json")),
        ("401 no token", 401, lambda: client(org=org).get("/api/v1/contacts")),
        ("401 bad token", 401, lambda: client("nope" * 10, org).get("/api/v1/contacts")),
        ("401 Token keyword", 401, lambda: client(alice.token, org, scheme="Token").get("/api/v1/contacts")),
        (
            "401 bad password",
            401,
            lambda: APIClient().post("/api/v1/auth/token", {"email": "x@y.test", "password": "x"}, format="json"),
        ),
        ("403 not a member", 403, lambda: client(alice.token, org + 1000).get("/api/v1/contacts")),
        ("404 object", 404, lambda: me.get("/api/v1/contacts/999999999")),
        ("404 route", 404, lambda: me.get("/api/v1/no-such-thing")),
        ("405 method", 405, lambda: me.put(f"/api/v1/contacts/{contact['id']}", {}, format="json")),
        ("409 duplicate", 409, lambda: me.post("/api/v1/tags", {"name": "vip"}, format="json")),
        (
            "413 body cap",
            413,
            lambda: me.generic("POST", "/api/v1/contacts", "x" * (3 << 20), content_type="application/json"),
        ),
        ("415 media type", 415, lambda: me.generic("POST", "/api/v1/contacts", "x", content_type="text/plain")),
        ("422 unknown parameter", 422, lambda: me.get("/api/v1/contacts?nope=1")),
        ("422 invalid value", 422, lambda: me.post("/api/v1/contacts", {"dnc": "maybe"}, format="json")),
    ]


def test_every_answer_carries_both_headers(alice):
    alice.client.post("/api/v1/tags", {"name": "vip"}, format="json")
    for name, status, call in cases(alice):
        response = call()
        assert response.status_code == status, (name, response.content[:300])
        assert POLICY.match(response.get("RateLimit-Policy", "")), (name, response.get("RateLimit-Policy"))
        assert STATE.match(response.get("RateLimit", "")), (name, response.get("RateLimit"))


def test_an_answer_refused_before_counting_reports_the_callers_bucket_without_spending_it(alice):
    spent = [alice.client.get("/api/v1/contacts")["RateLimit"] for _ in range(3)][-1]
    remaining = int(re.search(r"r=(\d+)", spent).group(1))
    too_big = alice.client.generic("POST", "/api/v1/contacts", "x" * (3 << 20), content_type="application/json")
    assert too_big.status_code == 413
    assert f'"api";r={remaining};' in too_big["RateLimit"]  # the token's own bucket, not spent by the refusal
    assert f'"api";r={remaining - 1};' in alice.client.get("/api/v1/contacts")["RateLimit"]


def test_the_429_carries_them_too(alice, settings):
    from rest_framework.settings import api_settings

    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    try:
        answers = [alice.client.get("/api/v1/contacts") for _ in range(3)]
        assert answers[-1].status_code == 429
        assert answers[-1]["RateLimit-Policy"] == '"api";q=2;w=60'
        assert answers[-1]["RateLimit"].startswith('"api";r=0;t=')
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
        api_settings.reload()
