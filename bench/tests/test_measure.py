"""The SQL replay of a request (bench.measure.time_sql) follows the service's savepoints."""

import psycopg
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


def test_a_cancelled_statement_the_service_did_not_roll_back_is_an_error():
    connection.ensure_connection()
    queries = [q for q in CANCELLED_WALK if not q.startswith("ROLLBACK")]
    with pytest.raises(psycopg.errors.QueryCanceled):
        measure.time_sql(connection.connection, queries, runs=1, budget_s=5)
