"""The duplicate finder (DESIGN §4 "Nothing is lost"): groups of an org's live contacts that are
likely the same person, best first, and the dismissals that say "not the same person".

Rules (each a key; contacts sharing a key are linked):
- `email`: the same mailbox. The folded address is unique per org already, so what this finds is
  addresses that differ but reach one mailbox at a provider that ignores dots and/or `+tags`
  (PROVIDERS); `contacts_mailbox_key()` in SQL, `mailbox_key()` here.
- `phone`: the same E.164 number (the column is stored E.164).
- `name_company`: the same name and company, both non-empty, case- and accent-folded, runs of
  whitespace as one space; `contacts_person_key()` in SQL, `person_key()` here.
A key shared by more than MAX_GROUP contacts is a shared value (a switchboard number, a role
mailbox), not a person, and links nobody.

How (docs/contacts.md, "Duplicates"): one statement finds every key shared by 2..MAX_GROUP
contacts (`contacts_duplicate_keys`, migration 0013: an index-only GROUP BY per key over a partial
index that leads with org_id). A key group that shares no contact with another is a group by
itself: the statement scores, filters, orders and pages those. The few that share a contact come
back whole and are merged here (union-find), scored and put in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod

from django.core import signing
from django.db import IntegrityError, connection, transaction

from contacts.models import Contact, DuplicateDismissal
from crm.errors import FieldError, InvalidInput
from crm.limits import MAX_CURSOR_LENGTH
from customization.text import fold, fold_unaccented
from orgs.models import Membership

# Providers that deliver `local+tag@domain` to `local@domain` (documented plus addressing), and the
# two Google domains, which also ignore dots in the local part and are one mailbox. domain ->
# (dots ignored, canonical domain). Migration 0013 holds the same table in SQL; a change here
# needs a migration replacing `contacts_mailbox_key` (contacts/tests/test_duplicates_keys.py checks).
PROVIDERS: dict[str, tuple[bool, str]] = {
    "gmail.com": (True, "gmail.com"),
    "googlemail.com": (True, "gmail.com"),
    "outlook.com": (False, "outlook.com"),
    "hotmail.com": (False, "hotmail.com"),
    "live.com": (False, "live.com"),
    "fastmail.com": (False, "fastmail.com"),
    "fastmail.fm": (False, "fastmail.fm"),
    "icloud.com": (False, "icloud.com"),
    "me.com": (False, "me.com"),
    "mac.com": (False, "mac.com"),
    "proton.me": (False, "proton.me"),
    "protonmail.com": (False, "protonmail.com"),
    "pm.me": (False, "pm.me"),
}

REASONS = ("email", "phone", "name_company")
# How likely a link by one rule alone is the same person; a contact linked by several rules
# scores 1 - Π(1 - weight) (email and phone: 97).
WEIGHTS = {"email": 0.9, "phone": 0.7, "name_company": 0.6}
MAX_GROUP = 10  # members of one key, and of one dismissal (as a merge takes at most 10 contacts)
MIN_DISMISS = 2
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_SALT = "contacts.duplicates.cursor"


def mailbox_key(email: str | None) -> str | None:
    """The mailbox `email` reaches at a provider of PROVIDERS ('J.Doe+x@GoogleMail.com' →
    'jdoe@gmail.com'); None for any other domain (there the folded address is the mailbox)."""
    if not email or "@" not in email:
        return None
    local, _, domain = fold(email).rpartition("@")
    provider = PROVIDERS.get(domain)
    if provider is None:
        return None
    dots_ignored, canonical = provider
    local = local.split("+", 1)[0]
    if dots_ignored:
        local = local.replace(".", "")
    return f"{local}@{canonical}" if local else None


def _person_part(text: str) -> str:
    return " ".join(fold_unaccented(text.strip()).split())


def person_key(name: str | None, company: str | None) -> str | None:
    """Name and company folded without accents ('José  Núñez', 'ACME' → 'jose nunez\\x1facme');
    None unless both are non-empty."""
    if not (name or "").strip() or not (company or "").strip():
        return None
    return f"{_person_part(name)}\x1f{_person_part(company)}"


def score(reasons_by_member: dict[int, set[str]]) -> int:
    """A group is as likely as its least linked member: 100 × min over members of 1 - Π(1 - weight)."""
    return min(round(100 * (1 - prod(1 - WEIGHTS[r] for r in reasons))) for reasons in reasons_by_member.values())


@dataclass
class Group:
    ids: list[int]  # sorted
    matches: list[dict] = field(default_factory=list)  # [{"reason", "ids"}]: the keys linking them
    score: int = 0

    @property
    def reasons(self) -> list[str]:
        found = {m["reason"] for m in self.matches}
        return [r for r in REASONS if r in found]

    @property
    def sort_key(self) -> tuple[int, int]:
        """Best first; among equals the group with the newest member first (ids grow with time,
        and groups are disjoint, so the pair is unique)."""
        return (-self.score, -self.ids[-1])


# One statement: every shared key of the org (contacts_duplicate_keys, migration 0013), split into
# the key groups that share a contact with another ("linked": returned whole, merged in Python;
# few) and the rest, each a group of its own, scored, dismissed ones dropped, ordered and paged
# here (the next `limit` + 1 after the cursor) and counted, so that only a page crosses over.
PAGE_SQL = """
WITH keyed AS MATERIALIZED (
    SELECT row_number() OVER () AS k, reason, ids, cardinality(ids) AS size FROM {source}
), members AS MATERIALIZED (
    SELECT k, size, unnest(ids) AS id FROM keyed
), shared AS (  -- a contact is in one key group per rule: one in two is in an email or a phone group
    SELECT id FROM members WHERE id IN (SELECT unnest(ids) FROM keyed WHERE reason <> 'name_company')
    GROUP BY id HAVING count(*) > 1
), linked AS (
    SELECT DISTINCT k FROM members WHERE id IN (SELECT id FROM shared)
), dismissed AS (
    SELECT DISTINCT m.k FROM members m
    JOIN (SELECT d.id AS d, unnest(d.ids) AS id FROM contacts_duplicatedismissal d WHERE d.org_id = %(org)s) dm
      ON dm.id = m.id
    GROUP BY m.k, m.size, dm.d HAVING count(*) = m.size
), alone AS (
    SELECT reason, ids, CASE reason {scores} END AS score, ids[size] AS newest FROM keyed
    WHERE k NOT IN (SELECT k FROM linked) AND k NOT IN (SELECT k FROM dismissed)
)
SELECT 'linked', reason, ids FROM keyed WHERE k IN (SELECT k FROM linked)
UNION ALL
(SELECT 'page', reason, ids FROM alone WHERE (score, newest) < (%(score)s, %(newest)s)
 ORDER BY score DESC, newest DESC LIMIT %(limit)s)
UNION ALL
SELECT 'count', NULL, ARRAY[count(*)] FROM alone
"""
SCORES = " ".join(f"WHEN '{reason}' THEN {round(100 * weight)}" for reason, weight in WEIGHTS.items())
NO_CURSOR = (101, 2**63 - 1)  # (score, newest) above every group
WORK_MEM = "64MB"


def read_keys(membership: Membership, limit: int, after: tuple[int, int]) -> tuple[list, list, int]:
    """(linked key groups, the page of the others as Groups, how many others) for the member's
    contacts: key groups are (reason, sorted ids) of keys shared by 2..MAX_GROUP contacts."""
    if membership.sees_only_assigned:
        source, params = "contacts_assigned_duplicate_keys(%(user)s, %(max)s)", {"user": membership.user_id}
    else:
        source, params = "contacts_duplicate_keys(%(max)s)", {}
    score_, newest = after
    params.update(max=MAX_GROUP, org=membership.org_id, score=score_, newest=newest, limit=limit)
    linked, page, count = [], [], 0
    with connection.cursor() as cursor:
        # For this transaction only: the key groups of a large org (218,000 at 1M contacts) are sorted
        # and hashed in memory rather than in temporary files.
        cursor.execute("SELECT set_config('work_mem', %s, true)", [WORK_MEM])
        cursor.execute(PAGE_SQL.format(source=source, scores=SCORES), params)
        for part, reason, ids in cursor.fetchall():
            if part == "linked":
                linked.append((reason, ids))
            elif part == "page":
                page.append(Group(ids, [{"reason": reason, "ids": ids}], round(100 * WEIGHTS[reason])))
            else:
                count = ids[0]
    return linked, page, count


def merge(keyed: list[tuple[str, list[int]]]) -> list[Group]:
    """Key groups that share a contact become one group (union-find over the ids): a contact linked
    by two rules ends in one group with both reasons."""
    parent: dict[int, int] = {}

    def root_of(x: int) -> int:
        root = x
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for _, ids in keyed:
        first = root_of(ids[0])
        for other in ids[1:]:
            root = root_of(other)
            if root != first:
                parent[root] = first
    groups: dict[int, Group] = {}
    members: dict[int, dict[int, set[str]]] = {}
    for reason, ids in keyed:
        root = root_of(ids[0])
        group = groups.setdefault(root, Group([]))
        group.matches.append({"reason": reason, "ids": ids})
        linked = members.setdefault(root, {})
        for contact_id in ids:
            linked.setdefault(contact_id, set()).add(reason)
    for root, group in groups.items():
        group.ids = sorted(members[root])
        group.matches.sort(key=lambda m: (REASONS.index(m["reason"]), m["ids"]))
        group.score = score(members[root])
    return list(groups.values())


def drop_dismissed(org_id: int, groups: list[Group]) -> list[Group]:
    """Groups whose members are not all within one dismissal of the org."""
    containing: dict[int, list[frozenset[int]]] = {}
    for ids in DuplicateDismissal.objects.filter(org_id=org_id).values_list("ids", flat=True):
        dismissed = frozenset(ids)
        for contact_id in dismissed:
            containing.setdefault(contact_id, []).append(dismissed)
    if not containing:
        return groups
    return [g for g in groups if not any(dismissed.issuperset(g.ids) for dismissed in containing.get(g.ids[0], ()))]


def encode_cursor(group: Group) -> str:
    return signing.dumps([group.score, group.ids[-1]], salt=CURSOR_SALT)


def decode_cursor(token: str) -> tuple[int, int]:
    try:
        if len(token) > MAX_CURSOR_LENGTH:
            raise ValueError
        score_, newest = signing.loads(token, salt=CURSOR_SALT)
        if not (isinstance(score_, int) and isinstance(newest, int)):
            raise ValueError
    except (signing.BadSignature, ValueError, TypeError):
        raise InvalidInput([FieldError("cursor", "invalid_cursor", "This cursor is malformed.")])
    return -score_, -newest


@dataclass
class Page:
    count: int  # groups in all, for this caller
    groups: list[Group]
    contacts: dict[int, Contact]
    next_cursor: str | None


def find(membership: Membership, limit: int, cursor: str | None = None) -> Page:
    """One page of the groups the member can see, best first."""
    after = decode_cursor(cursor) if cursor else (-NO_CURSOR[0], -NO_CURSOR[1])
    linked, alone, alone_count = read_keys(membership, limit + 1, (-after[0], -after[1]))
    merged = drop_dismissed(membership.org_id, merge(linked))
    remaining = sorted([g for g in merged if g.sort_key > after] + alone, key=lambda g: g.sort_key)
    page = remaining[:limit]
    ids = [contact_id for group in page for contact_id in group.ids]
    contacts = Contact.objects.for_member(membership).filter(pk__in=ids).only(*BRIEF_FIELDS).in_bulk()
    next_cursor = encode_cursor(page[-1]) if len(remaining) > limit else None
    return Page(alone_count + len(merged), page, contacts, next_cursor)


BRIEF_FIELDS = ("id", "org_id", "name", "email", "phone", "company", "updated_at")


def dismiss(membership: Membership, ids: list[int]) -> tuple[DuplicateDismissal, bool]:
    """Remember that `ids` (2..MAX_GROUP distinct contacts the member can see) are not one person;
    (the dismissal, whether it is new). The same set dismissed again is the same dismissal."""
    visible = set(Contact.objects.for_member(membership).filter(pk__in=ids).values_list("pk", flat=True))
    errors = [
        FieldError(f"ids.{i}", "not_found", f"No contact with id {contact_id} (or not one you can see).")
        for i, contact_id in enumerate(ids)
        if contact_id not in visible
    ]
    if errors:
        raise InvalidInput(errors)
    key = sorted(ids)
    try:
        with transaction.atomic():
            return DuplicateDismissal.objects.create(
                org_id=membership.org_id, ids=key, user_id=membership.user_id
            ), True
    except IntegrityError:  # dismissed before (or by a concurrent request)
        return DuplicateDismissal.objects.get(org_id=membership.org_id, ids=key), False
