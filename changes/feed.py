"""Reading the change feed: an org's entries after a position, in commit order.

A position is (seq, part, id): the commit's number in the org's sequence (changes.models.Commit),
then the entry within that commit (part 0: a contact's history entry, part 1: another object's
change; id: the entry's row id). Every entry has a distinct position, and a commit's entries are
all written before it is numbered, so "the entries after a position" is a stable answer: a consumer
that resumes from the last position it was given never misses an entry and never sees one twice.

`Cursor` carries the org too, so one org's cursor is refused by another instead of being read as a
position in a sequence it never belonged to.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json

from django.conf import settings
from django.db import connection

from crm.errors import FieldError, Gone, InvalidInput

CURSOR_VERSION = "f1"


@dataclasses.dataclass(frozen=True, order=True)
class Position:
    seq: int
    part: int = 0
    id: int = 0


START = Position(0, 0, 0)


def encode_cursor(org_id: int, position: Position) -> str:
    raw = f"{CURSOR_VERSION}:{org_id}:{position.seq}:{position.part}:{position.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(org_id: int, cursor: str) -> Position:
    """The position a cursor this org was given names; InvalidInput for anything else."""
    invalid = InvalidInput(
        [FieldError("cursor", "invalid_cursor", "Not a cursor of this feed: pass `next_cursor` (or an entry's `id`).")]
    )
    if not cursor or len(cursor) > 200 or not cursor.isascii():
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, org, seq, part, entry = raw.split(":")
        position = Position(int(seq), int(part), int(entry))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise invalid from None
    if version != CURSOR_VERSION or int(org) != org_id or min(position.seq, position.part, position.id) < 0:
        raise invalid
    return position


@dataclasses.dataclass
class Entry:
    position: Position
    at: dt.datetime
    object: str
    object_id: int
    contact_id: int | None  # the contact the entry is about (itself, or an opportunity's)
    event: str
    changes: dict
    user_id: int | None
    token: str | None
    source: str
    job_id: int | None


@dataclasses.dataclass
class Page:
    entries: list[Entry]
    next_position: Position
    has_more: bool


# The next commits from the position's (its later entries first), read first; then their entries
# in position order, at most `take` of each (the entry tables' indexes lead with (org_id, txid, id)).
# Two statements, but one answer: a numbered commit's entries never change, and commits numbered
# later come after every commit read. `scope` is an SQL condition on e.contact_id.
COMMITS = """
SELECT seq, txid, committed_at FROM changes_commit
WHERE org_id = %(org)s AND seq >= %(seq)s AND seq IS NOT NULL
ORDER BY seq LIMIT %(commits)s
"""
ENTRIES = """
SELECT c.seq, e.part, e.id, c.committed_at, e.object, e.object_id, e.contact_id, e.event, e.changes,
       e.user_id, e.token, e.source, e.job_id
FROM unnest(%(seqs)s::bigint[], %(txids)s::bigint[], %(ats)s::timestamptz[]) AS c(seq, txid, committed_at)
CROSS JOIN LATERAL (
    (SELECT 0 AS part, h.id, 'contact' AS object, h.contact_id AS object_id, h.contact_id, h.event, h.changes,
            h.user_id, h.token, h.source, h.job_id
     FROM history_contactchange h
     WHERE h.org_id = %(org)s AND h.txid = c.txid AND (c.seq > %(seq)s OR (0, h.id) > (%(part)s, %(id)s))
     ORDER BY h.id LIMIT %(take)s)
    UNION ALL
    (SELECT 1, o.id, o.object, o.object_id, o.contact_id, o.event, o.changes, o.user_id, o.token, o.source, o.job_id
     FROM changes_objectchange o
     WHERE o.org_id = %(org)s AND o.txid = c.txid AND (c.seq > %(seq)s OR (1, o.id) > (%(part)s, %(id)s))
     ORDER BY o.id LIMIT %(take)s)
) e
WHERE {scope}
ORDER BY c.seq, e.part, e.id
LIMIT %(take)s
"""
FIRST_COMMITS = 4  # commits read in the first round; each further round reads four times more

# An assigned-only member sees the entries of contacts assigned to them now (alive, or in the
# trash with them as its assignee) and the entries about no contact (tags, fields, views).
ASSIGNED_SCOPE = """(e.contact_id IS NULL
    OR EXISTS (SELECT 1 FROM contacts_contact k
               WHERE k.org_id = %(org)s AND k.id = e.contact_id AND k.assigned_to_id = %(user)s)
    OR EXISTS (SELECT 1 FROM contacts_trashedcontact t
               WHERE t.org_id = %(org)s AND t.contact_id = e.contact_id AND t.assigned_to_id = %(user)s))"""


def read(org_id: int, after: Position | None, limit: int, *, assignee_id: int | None = None) -> Page:
    """The org's entries after `after` (None: from the oldest kept), at most `limit`, in commit
    order. Raises Gone when retention deleted entries after `after` (the consumer would miss them).

    `assignee_id`: only what an assigned-only member with this user id may see.
    """
    oldest = horizon(org_id)
    if after is None:
        after = oldest
    elif after < oldest:
        raise Gone(
            f"This cursor is older than the feed keeps ({settings.CHANGES_DAYS} days): changes after it were "
            "deleted. Start again without a cursor and reconcile from the objects themselves."
        )
    params = {"org": org_id, "user": assignee_id}
    sql = ENTRIES.format(scope="true" if assignee_id is None else ASSIGNED_SCOPE)
    entries: list[Entry] = []
    position, commits = after, FIRST_COMMITS
    # Rounds of commits, few first: a commit can hold thousands of entries (an import's step) or one
    # (a PATCH), and reading a page's worth of large commits would read many pages of entries.
    while len(entries) <= limit:
        read_seqs, rows = _round(sql, params, position, commits, take=limit + 1 - len(entries))
        entries += rows
        if not read_seqs:
            break
        position = Position(read_seqs[-1], 2, 0)  # past every entry of the last commit read
        if len(read_seqs) < commits:
            break  # no commit after these yet
        commits *= 4
    if len(entries) > limit:
        return Page(entries[:limit], entries[limit - 1].position, has_more=True)
    return Page(entries, max(position, after), has_more=False)


def _round(sql: str, params: dict, after: Position, commits: int, take: int) -> tuple[list[int], list[Entry]]:
    """The next `commits` commits after `after`, and at most `take` of their entries."""
    params = {**params, "seq": after.seq, "part": after.part, "id": after.id, "commits": commits, "take": take}
    with connection.cursor() as cursor:
        cursor.execute(COMMITS, params)
        found = cursor.fetchall()
        if not found:
            return [], []
        params["seqs"], params["txids"], params["ats"] = (list(column) for column in zip(*found, strict=True))
        cursor.execute(sql, params)
        return params["seqs"], [_entry(row) for row in cursor.fetchall()]


def entry_payload(org_id: int, entry: Entry) -> dict:
    """An entry as the feed and webhooks send it (documented by changes.api.views.ChangeSerializer)."""
    return {
        "id": encode_cursor(org_id, entry.position),
        "at": entry.at.isoformat().replace("+00:00", "Z"),
        "object": entry.object,
        "object_id": entry.object_id,
        "event": entry.event,
        "changes": entry.changes,
        "actor": {"user": entry.user_id, "token": entry.token},
        "source": entry.source,
        "job": entry.job_id,
    }


def _entry(row) -> Entry:
    seq, part, entry_id, at, obj, object_id, contact_id, event, changes, user_id, token, source, job_id = row
    changes = json.loads(changes) if isinstance(changes, str) else changes  # Django reads jsonb as text
    return Entry(Position(seq, part, entry_id), at, obj, object_id, contact_id, event, changes, user_id, token,
                 source, job_id)  # fmt: skip


def head(org_id: int) -> Position:
    """The position after the org's last committed entry: where a new consumer (a webhook created
    now) starts to see only what happens from here on."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT last_seq FROM changes_feedstate WHERE org_id = %s", [org_id])
        row = cursor.fetchone()
    # The counter read is the last committed one: every commit up to it is visible.
    return Position(row[0], 2, 0) if row else START


def horizon(org_id: int) -> Position:
    """The oldest position whose later entries are all kept: after the last commit retention
    deleted (a consumer resuming from an older one would miss entries)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT expired_through FROM changes_feedstate WHERE org_id = %s", [org_id])
        row = cursor.fetchone()
    return Position(row[0], 2, 0) if row and row[0] else START
