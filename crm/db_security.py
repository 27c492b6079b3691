"""Row-level security: the database's own wall between orgs (defense in depth).

Every tenant table has ENABLE + FORCE ROW LEVEL SECURITY and two policies:

    tenant_isolation  TO crm_app     USING (org_id = NULLIF(current_setting('app.org_id', true), '')::bigint)
    tenant_bypass     TO crm_bypass  USING (true)        -- the named escape hatch

Requests run as the app role (owns no table, no BYPASSRLS): the request middleware switches
to it with `SET LOCAL ROLE` and sets `app.org_id` (and `app.user_id`, for membership lookups)
per transaction, so a pooled connection (PgBouncer in transaction mode) never carries one
request's org into the next. An unset org matches nothing (fail closed). The tenant policy is
a plain equality on `org_id`, so the planner uses it as an index condition, evaluated once.

Round trips are much of the cost of a small request, so a claimed org is set in the same round
trip as the lookup of the verified user's membership in it (`claim_org`: two statements sent
together, run in order).

Code that legitimately spans orgs (admin, bootstrap commands) switches to the bypass role
with `rls_bypass()`. Migrations run as the owner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from django.conf import settings
from django.db import connection, migrations, transaction

ORG_SETTING = "app.org_id"
USER_SETTING = "app.user_id"

ORG_MATCH = f"org_id = NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint"
USER_MATCH = f"user_id = NULLIF(current_setting('{USER_SETTING}', true), '')::bigint"


def app_role() -> str:
    return settings.RLS_APP_ROLE


def bypass_role() -> str:
    return settings.RLS_BYPASS_ROLE


def _in_transaction() -> bool:
    """Inside `transaction.atomic()`, as every request is (Django turns autocommit off there)."""
    return not transaction.get_autocommit()


def _set(name: str, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def enter_request(*, statement_timeout: str, bypass: bool = False) -> None:
    """Start of a request transaction: its statement timeout; become the app role, no org yet
    (sees nothing). One statement."""
    with connection.prepared_cursor() as cursor:
        if not settings.RLS_ENABLED:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [statement_timeout])
            return
        cursor.execute(
            "SELECT set_config('role', %s, true), set_config(%s, '', true), set_config(%s, '', true),"
            " set_config('statement_timeout', %s, true)",
            [bypass_role() if bypass else app_role(), ORG_SETTING, USER_SETTING, statement_timeout],
        )


def leave_request() -> None:
    """End of a nested request transaction (tests): back to the session role, no org, the
    session's statement timeout."""
    if not _in_transaction() or transaction.get_rollback():
        return
    timeout = "set_config('statement_timeout', reset_val, true) FROM pg_settings WHERE name = 'statement_timeout'"
    with connection.cursor() as cursor:
        if not settings.RLS_ENABLED:
            cursor.execute(f"SELECT {timeout}")
            return
        cursor.execute(
            f"SELECT set_config('role', 'none', true), set_config(%s, '', true), set_config(%s, '', true), {timeout}",
            [ORG_SETTING, USER_SETTING],
        )


def set_request_user(user_id: int) -> None:
    if settings.RLS_ENABLED and _in_transaction():
        _set(USER_SETTING, str(user_id))


def set_request_org(org_id: int) -> None:
    if settings.RLS_ENABLED and _in_transaction():
        _set(ORG_SETTING, str(org_id))


def set_request_identity(user_id: int, org_id: int, also: Sequence[tuple[str, str]] = ()) -> None:
    """User and (claimed) org in one round trip, before the membership check; `also`: more
    transaction-local settings (name, value) for the same statement (the history's context).

    Until that check passes, the only query run is the membership lookup, which is itself
    filtered by both; a non-member is answered 403 and the transaction ends.
    """
    identity = [(USER_SETTING, str(user_id)), (ORG_SETTING, str(org_id))] if settings.RLS_ENABLED else []
    pairs = [*identity, *also]
    if pairs and _in_transaction():
        with connection.cursor() as cursor:
            cursor.execute(_set_configs(len(pairs)), [item for pair in pairs for item in pair])


def _set_configs(count: int) -> str:
    return "SELECT " + ", ".join(["set_config(%s, %s, true)"] * count)


def claim_org(org_id: int, lookup_sql: str, params: list, also: Sequence[tuple[str, str]] = ()) -> list[tuple]:
    """Set the org a request claims (and the settings in `also`) and run `lookup_sql`, the lookup
    that verifies the claim (the caller's membership in it), in one round trip; return its rows.

    Fail closed: the lookup is the only query run with the claimed org set. The caller verifies
    the membership from the rows and must call `drop_org_claim()` on every other outcome.
    """
    pairs = [*([(ORG_SETTING, str(org_id))] if settings.RLS_ENABLED else []), *also]
    if not (pairs and _in_transaction()):
        with connection.cursor() as cursor:
            cursor.execute(lookup_sql, params)
            return cursor.fetchall()
    claim, claim_params = _set_configs(len(pairs)), [item for pair in pairs for item in pair]
    with connection.prepared_cursor() as cursor:
        if not connection.prepares_statements:  # a client-side binding cursor: one message
            cursor.execute(f"{claim}; {lookup_sql}", [*claim_params, *params])
            cursor.nextset()
        else:
            with connection.one_round_trip():
                cursor.execute(claim, claim_params)
                cursor.execute(lookup_sql, params)
        return cursor.fetchall()


def drop_org_claim() -> None:
    """Back to no org (sees nothing): the claim set by `claim_org` was not verified."""
    if settings.RLS_ENABLED and _in_transaction() and not transaction.get_rollback():
        _set(ORG_SETTING, "")


def _switch_role(role: str) -> str:
    """Set the transaction's role; return the one to restore ('none' = the session user)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT CASE WHEN current_user = session_user THEN 'none' ELSE current_user::text END, "
            "set_config('role', %s, true)",
            [role],
        )
        return cursor.fetchone()[0]


@contextlib.contextmanager
def rls_bypass():
    """The named escape hatch for code that legitimately spans orgs (admin, bootstrap commands)."""
    with transaction.atomic():
        previous = _switch_role(bypass_role()) if settings.RLS_ENABLED else None
        try:
            yield
        finally:
            if previous is not None and not transaction.get_rollback():
                _switch_role(previous)


@contextlib.contextmanager
def as_org(org_id: int):
    """Run a block as the app role inside one org, as a request would (management commands, tests)."""
    with transaction.atomic():
        enter_request(statement_timeout="0")  # no limit outside a request
        set_request_org(org_id)
        yield
        # Only on success: after an error the block's savepoint is rolled back, settings with it,
        # and a statement here would hide the error behind "current transaction is aborted".
        leave_request()


# --- migrations ------------------------------------------------------------------------


@contextlib.contextmanager
def bypassing_rls(schema_editor):
    """A data migration's block as the bypass role: the owner is itself subject to forced RLS.
    DDL after the block runs as the owner again."""
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT set_config('role', %s, true)", [bypass_role()])
    try:
        yield
    finally:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT set_config('role', 'none', true)")


def tenant_rls(table: str, *, own_rows_by_user: bool = False) -> migrations.RunSQL:
    """Migration operation: force RLS on a tenant table with the org policy and the bypass policy.

    `own_rows_by_user`: the app role may also read rows whose `user_id` is the request's user
    (memberships: `GET /me` and resolving `X-Org-Id` read the caller's rows of every org).
    """
    app, bypass = settings.RLS_APP_ROLE, settings.RLS_BYPASS_ROLE
    statements = [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"DROP POLICY IF EXISTS tenant_bypass ON {table}",
        f"DROP POLICY IF EXISTS own_rows ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} TO {app} USING ({ORG_MATCH}) WITH CHECK ({ORG_MATCH})",
        f"CREATE POLICY tenant_bypass ON {table} TO {bypass} USING (true) WITH CHECK (true)",
    ]
    if own_rows_by_user:
        statements.append(f"CREATE POLICY own_rows ON {table} FOR SELECT TO {app} USING ({USER_MATCH})")
    return migrations.RunSQL(
        sql=statements,
        reverse_sql=[
            f"DROP POLICY IF EXISTS own_rows ON {table}",
            f"DROP POLICY IF EXISTS tenant_bypass ON {table}",
            f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        ],
    )
