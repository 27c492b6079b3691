"""Row-level security: the database's own wall between orgs (defense in depth).

Every tenant table has ENABLE + FORCE ROW LEVEL SECURITY and the policy

    org_id = NULLIF(current_setting('app.org_id', true), '')::bigint   -- fail closed when unset
    OR current_setting('app.rls_bypass', true) = 'on'                    -- the named escape hatch

Requests run as APP_ROLE, a role that owns no table and has no BYPASSRLS: the request
middleware switches to it with `SET LOCAL ROLE` and sets `app.org_id` (and `app.user_id`,
for membership lookups) per transaction, so a pooled connection (PgBouncer in transaction
mode) never carries one request's org into the next. Migrations run as the owner.
"""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.db import connection, migrations, transaction

BYPASS_SETTING = "app.rls_bypass"
ORG_SETTING = "app.org_id"
USER_SETTING = "app.user_id"

ORG_MATCH = f"org_id = NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint"
BYPASS = f"current_setting('{BYPASS_SETTING}', true) = 'on'"


def app_role() -> str:
    return settings.RLS_APP_ROLE


def _set(name: str, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config(%s, %s, true)", [name, value])


def enter_request(*, bypass: bool = False) -> None:
    """Start of a request transaction: become the app role, no org yet (sees nothing)."""
    if not settings.RLS_ENABLED:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('role', %s, true), set_config(%s, '', true), set_config(%s, '', true), "
            "set_config(%s, %s, true)",
            [app_role(), ORG_SETTING, USER_SETTING, BYPASS_SETTING, "on" if bypass else "off"],
        )


def leave_request() -> None:
    """End of a request transaction: drop the role and settings (matters when it is nested, as in tests)."""
    if not settings.RLS_ENABLED or connection.needs_rollback or connection.connection is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('role', 'none', true), set_config(%s, '', true), set_config(%s, '', true), "
            "set_config(%s, '', true)",
            [ORG_SETTING, USER_SETTING, BYPASS_SETTING],
        )


def set_request_user(user_id: int) -> None:
    if settings.RLS_ENABLED and connection.in_atomic_block:
        _set(USER_SETTING, str(user_id))


def set_request_org(org_id: int) -> None:
    if settings.RLS_ENABLED and connection.in_atomic_block:
        _set(ORG_SETTING, str(org_id))


def set_request_identity(user_id: int, org_id: int) -> None:
    """User and (claimed) org in one round trip, before the membership check.

    Until that check passes, the only query run is the membership lookup, which is itself
    filtered by both; a non-member is answered 403 and the transaction ends.
    """
    if settings.RLS_ENABLED and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
                [USER_SETTING, str(user_id), ORG_SETTING, str(org_id)],
            )


@contextlib.contextmanager
def rls_bypass():
    """The named escape hatch for code that legitimately spans orgs (admin, management commands)."""
    with transaction.atomic():
        if settings.RLS_ENABLED:
            _set(BYPASS_SETTING, "on")
        try:
            yield
        finally:
            if settings.RLS_ENABLED and not connection.needs_rollback:
                _set(BYPASS_SETTING, "")


@contextlib.contextmanager
def as_org(org_id: int):
    """Run a block as the app role inside one org, as a request would (management commands, tests)."""
    with transaction.atomic():
        enter_request()
        set_request_org(org_id)
        try:
            yield
        finally:
            leave_request()


# --- migrations ------------------------------------------------------------------------


def tenant_rls(table: str, extra_using: str = "") -> migrations.RunSQL:
    """Migration operation: force RLS on a tenant table with the org policy."""
    condition = f"({ORG_MATCH}) OR ({BYPASS})" + (f" OR ({extra_using})" if extra_using else "")
    return migrations.RunSQL(
        sql=[
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
            f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
            f"CREATE POLICY tenant_isolation ON {table} USING ({condition}) WITH CHECK ({condition})",
        ],
        reverse_sql=[
            f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
            f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
            f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
        ],
    )
