"""The production server set-up (gunicorn.conf.py) and the guards that must hold under a URL prefix."""

import json

import pytest

pytestmark = pytest.mark.django_db

BIG_BODY = json.dumps({"name": "x" * (3 * 1024 * 1024)})


def test_the_body_cap_holds_under_a_url_prefix(alice):
    """Routing uses path_info; so do the guards. Under SCRIPT_NAME=/x the path is /x/api/..."""
    response = alice.client.post("/api/v1/contacts", BIG_BODY, content_type="application/json", SCRIPT_NAME="/x")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"


def test_row_level_security_holds_under_a_url_prefix(alice, charlie):
    from contacts.models import Contact

    theirs = charlie.client.post("/api/v1/contacts", {"name": "Charlie's"}, format="json").json()
    # Only the database's wall: the application's own scoping would hide the row anyway.
    assert Contact.objects.filter(pk=theirs["id"]).exists()
    response = alice.client.get("/api/v1/contacts", SCRIPT_NAME="/x")
    assert response.status_code == 200
    assert all(c["id"] != theirs["id"] for c in response.json()["results"])
    assert "set_config('role'" in _first_statement_of(alice, SCRIPT_NAME="/x")


def _first_statement_of(actor, **extra) -> str:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        actor.client.get("/api/v1/org", **extra)
    return next(q["sql"] for q in captured.captured_queries if not q["sql"].startswith("SAVEPOINT"))


@pytest.mark.slow
def test_gunicorn_takes_no_script_name_or_forwarded_headers_from_an_untrusted_peer(live_gunicorn, alice):
    server = live_gunicorn()
    headers = {"Authorization": f"Bearer {alice.token}", "X-Org-Id": str(alice.org.id)}
    headers["Content-Type"] = "application/json"
    status, _, _ = server.request("POST", "/x/api/v1/contacts", BIG_BODY.encode(), {**headers, "SCRIPT_NAME": "/x"})
    # From a peer not in FORWARDED_ALLOW_IPS the header is dropped: /x stays part of the path.
    assert status == 404
    status, _, _ = server.request("POST", "/api/v1/contacts", BIG_BODY.encode(), headers)
    assert status == 413


@pytest.mark.slow
def test_behind_a_trusted_proxy_the_prefix_is_honoured_and_the_guards_still_hold(live_gunicorn, alice):
    server = live_gunicorn({"FORWARDED_ALLOW_IPS": "127.0.0.1"})
    headers = {"Authorization": f"Bearer {alice.token}", "X-Org-Id": str(alice.org.id), "SCRIPT_NAME": "/x"}
    status, body, _ = server.request("GET", "/x/api/v1/org", None, headers)
    assert status == 200, body
    headers["Content-Type"] = "application/json"
    status, _, _ = server.request("POST", "/x/api/v1/contacts", BIG_BODY.encode(), headers)
    assert status == 413


@pytest.mark.slow
def test_gunicorn_limits_the_request_line_and_headers(live_gunicorn):
    server = live_gunicorn()
    assert server.request("GET", "/api/v1/contacts?q=" + "a" * 9000)[0] == 414
    many = {f"X-Extra-{n}": "1" for n in range(60)}
    assert server.request("GET", "/api/v1/schema/", None, many)[0] == 431
