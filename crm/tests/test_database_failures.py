"""Database failures a client can meet (issue 16, findings 6, 7, 9): a statement timeout, a
deadlock, an unreachable database. Each is a 503 problem, never a 500, and leaves nothing written."""

import time

import pytest
from django.db import connection
from rest_framework.response import Response

from contacts.models import Contact, ContactTag
from orgs.api.views import CurrentOrgView

pytestmark = pytest.mark.django_db


def raise_deadlock():
    """A real deadlock_detected error from PostgreSQL (SQLSTATE 40P01), as a lock cycle gives."""
    with connection.cursor() as cursor:
        cursor.execute("DO $$ BEGIN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END $$")


def test_a_request_statement_runs_under_the_statement_timeout(alice, settings, monkeypatch):
    settings.STATEMENT_TIMEOUT = "200ms"

    def slow(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(5)")
        return Response({})

    monkeypatch.setattr(CurrentOrgView, "get", slow)
    response = alice.client.get("/api/v1/org")
    assert response.status_code == 503
    problem = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert problem["errors"][0]["code"] == "statement_timeout"
    assert "STATEMENT_TIMEOUT" in problem["detail"]


def test_imports_have_their_own_statement_timeout(alice, settings, monkeypatch):
    from contacts.api.import_views import ContactImportView

    settings.STATEMENT_TIMEOUT, settings.IMPORT_STATEMENT_TIMEOUT = "7s", "123s"
    seen = {}

    def show(self, request):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            seen[request.path] = cursor.fetchone()[0]
        return Response({})

    monkeypatch.setattr(ContactImportView, "post", show)
    monkeypatch.setattr(CurrentOrgView, "get", show)
    alice.client.post("/api/v1/contacts/import", {"contacts": []}, format="json")
    alice.client.get("/api/v1/org")
    assert seen == {"/api/v1/contacts/import": "123s", "/api/v1/org": "7s"}


def test_a_deadlock_reruns_the_request_and_the_client_sees_one_success(alice, monkeypatch):
    from contacts.api import extras_views

    contact = alice.client.post("/api/v1/contacts", {"name": "Ada"}, format="json").json()
    calls = []
    original = extras_views.add_tags

    def add_tags_meeting_one_deadlock(*args):
        calls.append(1)
        original(*args)  # its writes are rolled back with the first attempt
        if len(calls) == 1:
            raise_deadlock()

    monkeypatch.setattr(extras_views, "add_tags", add_tags_meeting_one_deadlock)
    response = alice.client.post(f"/api/v1/contacts/{contact['id']}/tags", {"tags": ["vip"]}, format="json")
    assert response.status_code == 200, response.content
    assert len(calls) == 2
    assert ContactTag.objects.filter(contact_id=contact["id"]).count() == 1


def test_a_request_that_keeps_deadlocking_is_a_503_and_writes_nothing(alice, settings, monkeypatch):
    from contacts import services

    settings.TRANSACTION_ATTEMPTS = 3
    calls = []

    def always_deadlocking(*args):
        calls.append(1)
        raise_deadlock()

    monkeypatch.setattr(services, "add_tags", always_deadlocking)
    response = alice.client.post("/api/v1/contacts", {"name": "Ada", "tags": ["vip"]}, format="json")
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert response.json()["errors"][0]["code"] == "transaction_conflict"
    assert len(calls) == 3
    assert not Contact.objects.filter(org=alice.org).exists()


@pytest.mark.slow
def test_an_unreachable_database_is_a_503_with_retry_after(live_gunicorn, alice, tmp_path):
    from crm.tests.live_gunicorn import free_port

    dead = f"postgres://nobody@127.0.0.1:{free_port()}/nowhere"
    server = live_gunicorn({"DATABASE_URL": dead, "DB_CONNECT_WAIT": "0.3"})
    headers = {"Authorization": f"Bearer {alice.token}", "X-Org-Id": str(alice.org.id)}
    for method, path in (("GET", "/api/v1/org"), ("GET", "/api/v1/contacts"), ("POST", "/api/v1/auth/token")):
        status, body, response_headers = server.request(
            method, path, b"{}", {**headers, "Content-Type": "application/json"}
        )
        assert status == 503, body
        assert response_headers["Retry-After"] == "2"
        assert b"database_unavailable" in body


@pytest.fixture
def one_slot_role():
    """A login role allowed one connection at a time (CONNECTION LIMIT 1): every slot taken."""
    name = "crm_test_one_slot"
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {name}")
        cursor.execute(f"CREATE ROLE {name} LOGIN CONNECTION LIMIT 1")
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {name}")


def connect_as(role: str):
    """The service's backend, logging in as `role` (not registered in django.db.connections)."""
    from crm.db_postgresql.base import DatabaseWrapper

    return DatabaseWrapper({**connection.settings_dict, "USER": role, "PASSWORD": ""})


def hold_the_slot(role: str):
    import psycopg

    connection.ensure_connection()
    info = connection.connection.info
    return psycopg.connect(host=info.host, port=info.port, dbname=info.dbname, user=role)


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_waits_briefly_for_a_free_slot(one_slot_role, settings):
    import threading

    settings.DB_CONNECT_WAIT = 5
    holder = hold_the_slot(one_slot_role)
    threading.Timer(0.5, holder.close).start()
    waiting = connect_as(one_slot_role)
    started = time.monotonic()
    waiting.ensure_connection()  # refused with 53300 until the holder lets go
    try:
        assert time.monotonic() - started >= 0.4
        with waiting.cursor() as cursor:
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == one_slot_role
    finally:
        waiting.close()


@pytest.mark.django_db(transaction=True)
def test_no_free_slot_within_the_wait_is_a_database_unavailable_failure(one_slot_role, settings):
    from django.db import OperationalError

    from crm.api.exceptions import database_failure

    settings.DB_CONNECT_WAIT = 0.3
    holder = hold_the_slot(one_slot_role)
    try:
        with pytest.raises(OperationalError) as raised:
            connect_as(one_slot_role).ensure_connection()
        assert "too many connections" in str(raised.value)
        assert database_failure(raised.value).code == "database_unavailable"
    finally:
        holder.close()
