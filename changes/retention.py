"""Retention of the change feed: commits older than CHANGES_DAYS go, with their objects' entries
(contacts' entries stay in the history for HISTORY_DAYS); each org's horizon moves past them, so a
cursor from before it is answered 410 instead of silently skipping what was deleted."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import connection
from django.utils import timezone

from crm.db_security import rls_bypass

EXPIRE = """
WITH gone AS (
    DELETE FROM changes_commit WHERE committed_at < %s RETURNING org_id, seq, txid
), objects AS (
    DELETE FROM changes_objectchange o USING gone g WHERE o.org_id = g.org_id AND o.txid = g.txid
), horizon AS (
    SELECT org_id, max(seq) AS seq FROM gone GROUP BY org_id
), moved AS (
    UPDATE changes_feedstate f SET expired_through = greatest(f.expired_through, h.seq)
    FROM horizon h WHERE f.org_id = h.org_id
)
SELECT count(*) FROM gone
"""


def expire(now: dt.datetime | None = None) -> int:
    """Delete the commits made more than CHANGES_DAYS before `now`; how many went."""
    before = (now or timezone.now()) - dt.timedelta(days=settings.CHANGES_DAYS)
    with rls_bypass(), connection.cursor() as cursor:  # one sweep across orgs, as the named escape hatch
        cursor.execute(EXPIRE, [before])
        return cursor.fetchone()[0]
