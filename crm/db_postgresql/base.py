"""Django's PostgreSQL backend with two additions.

Prepared statements for the few fixed statements of every request (`prepared_cursor()`: the
role switch, the org claim with its membership lookup, a contact's tags and custom values).
Parsing and planning them, with the row-level security policies, cost PostgreSQL about four
times what running them does. The ORM's own queries keep Django's client-side binding, which
its SQL is written for. A pooler that cannot follow a client's prepared statements across
server connections (PgBouncer before 1.21, or without `max_prepared_statements`) needs
`DB_PREPARED_STATEMENTS=0`, which makes `prepared_cursor()` a plain cursor (docs/scaling.md).

A connect that waits (`get_new_connection`), so a brief restart or a full server is a short
wait rather than a 503.

Reused connections get Django's own `CONN_HEALTH_CHECKS` (a `SELECT 1` before a request's first
query); every override here is of a public method of Django's backend.
"""

from __future__ import annotations

import contextlib
import time

from django.conf import settings
from django.db.backends.postgresql import base, operations
from django.db.backends.postgresql.psycopg_any import register_tzloader
from django.utils.asyncio import async_unsafe
from psycopg import errors
from psycopg.pq import Format
from psycopg.types.numeric import Int8


class PreparedCursor(base.ServerBindingCursor):
    """Server-side binding, and every statement prepared on its first run on the connection.

    One per connection, reused (`close()` keeps it open): building a psycopg cursor costs more
    than the few statements a request runs through it.
    """

    def close(self):
        """Kept open for the connection's next fixed statement; it goes with the connection."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        if params:
            # One prepared statement per query: psycopg would otherwise type an int parameter
            # (or a list of ints) int2, int4 or int8 by its value, and prepare the query once for each.
            params = [_int8(p) for p in params]
        return super().execute(query, params, prepare=prepare, binary=binary)


def _int8(param):
    if type(param) is int:
        return Int8(param)
    if type(param) is list and param and all(type(item) is int for item in param):
        return [Int8(item) for item in param]
    return param


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        if isinstance(cursor, PreparedCursor):  # bound on the server: the values inline, for logs and tests
            try:
                return self.compose_sql(sql, params)
            except errors.DataError:
                return None
        return super().last_executed_query(cursor, sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
    _prepared_cursor = None

    def get_new_connection(self, conn_params):
        """Django's connect, retried for up to DB_CONNECT_WAIT seconds (backing off from 50 ms):
        a brief restart or every connection slot taken passes by itself. psycopg reports no
        SQLSTATE for a failed connect, so every connect failure waits alike (a misconfiguration
        too, before its 503). Past the wait the request is answered 503 (crm.api.exceptions)."""
        deadline = time.monotonic() + settings.DB_CONNECT_WAIT
        delay = 0.05
        while True:
            try:
                return super().get_new_connection(conn_params)
            except errors.OperationalError:
                if time.monotonic() + delay > deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    @property
    def prepares_statements(self) -> bool:
        return self.settings_dict["OPTIONS"].get("prepare_threshold") is not None

    @async_unsafe
    def prepared_cursor(self):
        """A cursor for a fixed statement run on every request: prepared on first use, then only
        bound and executed. A plain cursor when prepared statements are off.

        The connection's one PreparedCursor: run a statement and fetch its rows before asking
        for the next.
        """
        if not self.prepares_statements:
            return self.cursor()
        self.close_if_health_check_failed()
        self.ensure_connection()
        cursor = self._prepared_cursor
        if cursor is None or cursor.connection is not self.connection:
            with self.wrap_database_errors:
                cursor = PreparedCursor(self.connection)
            # The time zone loader exactly as the base class's create_cursor() sets it, with the
            # helpers of the backend module this package extends (it has no public ones).
            tzloader = self.connection.adapters.get_loader(base.TIMESTAMPTZ_OID, Format.TEXT)
            if self.timezone != tzloader.timezone:
                register_tzloader(self.timezone, cursor)
            self._prepared_cursor = cursor
        # What the base class's cursor() does to a new cursor, through its public methods.
        self.validate_thread_sharing()
        return self.make_debug_cursor(cursor) if self.queries_logged else self.make_cursor(cursor)

    @contextlib.contextmanager
    def one_round_trip(self):
        """Statements executed inside go to the server together and their results come back
        together (psycopg's pipeline mode); a cursor holds the last one's rows afterwards."""
        self.ensure_connection()
        with self.wrap_database_errors, self.connection.pipeline():
            yield
