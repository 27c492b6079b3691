"""The SQL replay of a request (bench.measure.time_sql) follows the service's savepoints."""

import pytest
from django.db import connection

from bench import measure

pytestmark = pytest.mark.django_db(transaction=True)

CANCELLED_WALK = [
    "SELECT 1",
    'SAVEPOINT "s1"',
    "SELECT current_setting('statement_timeout'), set_config('statement_timeout', '20ms', true)",
    "SELECT pg_sleep(0.5)",  # the walk the service cancelled at its budget
    'ROLLBACK TO SAVEPOINT "s1"',
    "SELECT count(*) FROM contacts_contact",  # the plan that answered
]


def test_a_walk_cancelled_at_its_budget_is_replayed_cancelled_and_charged():
    connection.ensure_connection()
    timed = measure.time_sql(connection.connection, CANCELLED_WALK, runs=3, budget_s=5)
    assert timed["main_sql"] == "SELECT count(*) FROM contacts_contact"
    assert timed["queries"] == 4  # the reads; savepoints are replayed but not counted
    assert timed["sql_p50_ms"] >= 20  # the budget the cancelled walk used is part of the request's SQL time


def test_a_statement_cancelled_in_the_replay_only_is_recorded_and_the_replay_goes_on():
    """The service did not roll back: its statement ran within budget there, not here (SQLSTATE 57014)."""
    connection.ensure_connection()
    queries = [q for q in CANCELLED_WALK if not q.startswith("ROLLBACK")]
    timed = measure.time_sql(connection.connection, queries, runs=1, budget_s=5)
    assert timed["sql_error"]["sqlstate"] == "57014"
    assert timed["sql_error"]["statement"] == "SELECT pg_sleep(0.5)"
    assert "sql_p50_ms" not in timed
    assert measure.time_sql(connection.connection, ["SELECT 1"], runs=1, budget_s=5)["queries"] == 1  # still usable


def test_any_other_replay_error_is_recorded_too():
    connection.ensure_connection()
    timed = measure.time_sql(connection.connection, ["SELECT 1", "SELECT * FROM no_such_table"], runs=2, budget_s=5)
    assert timed["sql_error"]["sqlstate"] == "42P01"
