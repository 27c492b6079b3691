"""The health check of reused connections (crm.db_postgresql): no round trip for a live one,
and a connection the server closed is still found and replaced."""

import select

import pytest
from django.db import connection, connections

pytestmark = pytest.mark.django_db


@pytest.fixture
def second():
    wrapper = connections.create_connection("default")
    assert wrapper.health_check_enabled or wrapper.settings_dict["CONN_HEALTH_CHECKS"]
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


def start_request(wrapper):
    wrapper.health_check_done = False  # as close_if_unusable_or_obsolete() does between requests


def test_a_live_connection_passes_without_a_round_trip(second, monkeypatch):
    monkeypatch.setattr(second, "is_usable", lambda: pytest.fail("SELECT 1 was sent"))
    start_request(second)
    second.close_if_health_check_failed()
    assert second.connection is not None and second.health_check_done


def test_a_connection_the_server_closed_is_replaced(second):
    fd = second.connection.fileno()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [second.connection.info.backend_pid])
    assert select.select([fd], [], [], 5)[0], "the server's goodbye never arrived"
    start_request(second)
    second.close_if_health_check_failed()
    assert second.connection is None
    with second.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
