"""Who and why, for the history triggers: transaction-local settings (`set_config(…, true)`), so a
pooled connection never carries one request's actor into the next.

Set by the API (source `api`, the caller and their token's prefix, in the round trip that claims
the org), the admin (`admin`), job steps (the job's kind, its id and creator), and by services that
change the source within a request (`restore`, `merge`). Unset: source `system`, no actor.
"""

from __future__ import annotations

import secrets

from django.db import connection

SOURCE = "history.source"
USER_ID = "history.user_id"
TOKEN = "history.token"
JOB_ID = "history.job_id"
# A fresh id per context: with the transaction id, the key entries are folded by. One context per
# transaction in production (a request, a job step); tests run many requests in one transaction.
UNIT = "history.unit"


def change_context(
    *, source: str, user_id: int | None = None, token: str | None = None, job_id: int | None = None
) -> list[tuple[str, str]]:
    """The settings of a context as (name, value) pairs, for a caller that folds them into a
    statement of its own (`db_security.claim_org`)."""
    return [
        (SOURCE, source),
        (USER_ID, "" if user_id is None else str(user_id)),
        (TOKEN, token or ""),
        (JOB_ID, "" if job_id is None else str(job_id)),
        (UNIT, str(secrets.randbits(62))),
    ]


def set_change_context(
    *, source: str, user_id: int | None = None, token: str | None = None, job_id: int | None = None
) -> None:
    """Every change written in the rest of this transaction is recorded with this source and actor."""
    set_settings(change_context(source=source, user_id=user_id, token=token, job_id=job_id))


def set_change_source(source: str) -> None:
    """Only the source changes (a restore or a merge inside a request); the actor and job stay."""
    set_settings([(SOURCE, source)])


def set_settings(pairs: list[tuple[str, str]]) -> None:
    calls = ", ".join(["set_config(%s, %s, true)"] * len(pairs))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {calls}", [item for pair in pairs for item in pair])


# A purge leaves no row for a trigger to see: the trash records it with this.
RECORD_PURGED = """
INSERT INTO history_contactchange (org_id, contact_id, at, event, source, job_id, user_id, token, txid, unit, changes)
SELECT d.org_id, d.contact_id, now(), 'purged',
       coalesce(nullif(current_setting('history.source', true), ''), 'system'),
       nullif(current_setting('history.job_id', true), '')::bigint,
       nullif(current_setting('history.user_id', true), '')::bigint,
       nullif(current_setting('history.token', true), ''), pg_current_xact_id()::text::bigint,
       coalesce(nullif(current_setting('history.unit', true), '')::bigint, 0), '{}'::jsonb
FROM unnest(%s::bigint[], %s::bigint[]) AS d(org_id, contact_id)
"""


def record_purged(contacts: list[tuple[int, int]]) -> None:
    """One `purged` entry per (org id, contact id) purged for good, with this transaction's context."""
    if contacts:
        org_ids, contact_ids = zip(*contacts, strict=True)
        with connection.cursor() as cursor:
            cursor.execute(RECORD_PURGED, [list(org_ids), list(contact_ids)])
