"""The project's database backend (crm.db_postgresql): Django's health check of reused
connections still finds a connection the server closed; fixed statements are prepared once."""

import select

import psycopg
import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def second():
    wrapper = connections.create_connection("default")
    assert wrapper.settings_dict["CONN_HEALTH_CHECKS"]
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def start_request(wrapper):
    wrapper.health_check_done = False  # as close_if_unusable_or_obsolete() does between requests


def terminate(wrapper):
    fd = wrapper.connection.fileno()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [wrapper.connection.info.backend_pid])
    assert select.select([fd], [], [], 5)[0], "the server's goodbye never arrived"


def test_a_connection_the_server_closed_is_replaced(second):
    terminate(second)
    start_request(second)
    second.close_if_health_check_failed()
    assert second.connection is None
    with second.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def test_the_prepared_cursor_is_health_checked_like_any_cursor(second):
    terminate(second)
    start_request(second)
    with second.prepared_cursor() as cursor:
        cursor.execute("SELECT %s::int", [7])
        assert cursor.fetchone() == (7,)


# --- prepared statements for the fixed statements of every request -----------------------

PREPARED = "SELECT statement FROM pg_prepared_statements WHERE statement = %s"


def prepared_on_this_connection(sql: str) -> int:
    with connection.cursor() as cursor:  # the same session: prepared statements are per connection
        cursor.execute(PREPARED, [sql.replace("%s", "$1", 1).replace("%s", "$2", 1)])
        return len(cursor.fetchall())


def test_a_fixed_statement_is_prepared_once_whatever_the_size_of_its_ids():
    sql = "SELECT %s::bigint + %s::bigint"
    answers = []
    for small, large in [(1, 2), (40_000, 2**40), (-3, 70_000)]:  # int2, int8, int4 by value
        with connection.prepared_cursor() as cursor:
            cursor.execute(sql, [small, large])
            answers.append(cursor.fetchone()[0])
    assert answers == [3, 40_000 + 2**40, 69_997]
    assert prepared_on_this_connection(sql) == 1


def test_the_prepared_cursor_is_the_connections_own_until_it_reconnects():
    with connection.prepared_cursor() as first:
        first.execute("SELECT 1")
    with connection.prepared_cursor() as again:
        assert again.cursor is first.cursor and not again.cursor.closed
    other = connections.create_connection("default")
    try:
        with other.prepared_cursor() as cursor:
            assert cursor.cursor is not first.cursor and cursor.cursor.connection is other.connection
    finally:
        other.close()


def test_with_prepared_statements_off_the_cursor_binds_on_the_client():
    wrapper = connections.create_connection("default")
    wrapper.settings_dict = {**wrapper.settings_dict, "OPTIONS": {**wrapper.settings_dict["OPTIONS"]}}
    wrapper.settings_dict["OPTIONS"]["prepare_threshold"] = None  # DB_PREPARED_STATEMENTS=0
    try:
        with wrapper.prepared_cursor() as cursor:
            assert isinstance(cursor.cursor, psycopg.ClientCursor)
            cursor.execute("SELECT %s::int", [5])
            assert cursor.fetchone() == (5,)
            cursor.execute("SELECT count(*) FROM pg_prepared_statements")
            assert cursor.fetchone() == (0,)
    finally:
        wrapper.close()


def test_every_request_prepares_its_role_switch_and_membership_lookup(alice):
    contact = alice.client.post("/api/v1/contacts", {"name": "Ada"}, format="json").json()
    for _ in range(2):
        assert alice.client.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("set_config('role'" in sql for sql in prepared)
    assert any("FROM orgs_membership" in sql and "$2" in sql for sql in prepared)
