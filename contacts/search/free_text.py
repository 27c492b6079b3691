"""`q`: a case- and accent-insensitive substring of name, email or company, or of the phone by digits.

`search_text` holds those values folded without accents (contacts.normalize.build_search_text),
and `q` is folded the same way, so matching is `search_text LIKE '%term%'`. The trigram index
serves that, but not under row-level security (PostgreSQL does not ship LIKE as leakproof), so
requests reach it through `crm_text_matches(patterns)`, a SECURITY DEFINER function that reads
the index for the org of the transaction only (contacts migration 0006).

`QText.of(q)` looks the term up once, capped: a term found in at most FEW contacts of the org
becomes that list of ids, which PostgreSQL plans exactly (a term found in a page of the org's
newest contacts is known to be common without the look-up). A more common term keeps two forms:
`rows`, checked on each contact row (a walk of the sort index finds a page in a few hundred
rows), and `index`, the function's ids (counts, and selections another condition narrows).
Staff in the admin, who are not confined to one org, filter on `q_rows`, which their role can index.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q
from django.db.models.expressions import RawSQL

from crm.db_security import ORG_MATCH
from customization.text import fold_unaccented

# A term matching at most this many contacts of the org is resolved to their ids up front.
FEW = 500
TEXT_MATCHES = "SELECT crm_text_matches(%s::text[])"
TEXT_MATCH_COUNT = "SELECT crm_text_match_count(%s::text[])"
# A term found in at least a page of the org's newest NEWEST contacts is common without looking it
# up: a walk of the list finds its first page among those rows. The look-up reads the whole trigram
# index bitmap of the term first (40 ms for a term in 163,000 of 1M contacts), the newest rows ~1 ms.
NEWEST = 1000
PAGE = 50
IN_NEWEST = f"""
SELECT count(*) FROM (
    SELECT search_text FROM contacts_contact WHERE {ORG_MATCH}
    ORDER BY created_at DESC, id DESC LIMIT {NEWEST}
) newest WHERE search_text LIKE ANY (%s::text[])
"""


def q_terms(q: str) -> list[str]:
    """The strings any of which the haystack must contain: the folded text, and its digits when `q`
    looks like a phone number."""
    text = fold_unaccented(" ".join(q.split()))
    if not text:
        return []
    terms = [text]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= 3 and re.fullmatch(r"[\d\s()+\-.]+", text) and digits != text:
        terms.append(digits)
    return terms


def like_patterns(q: str) -> list[str]:
    """`%term%` for each term, its LIKE wildcards escaped."""
    return ["%" + re.sub(r"([\\%_])", r"\\\1", term) + "%" for term in q_terms(q)]


def q_rows(q: str) -> Q:
    """Contacts matching `q`, checked on each row (an empty `q` matches every contact)."""
    condition = Q()
    for term in q_terms(q):
        condition |= Q(search_text__contains=term)
    return condition


@dataclass(frozen=True)
class QText:
    """`q` as the conditions the two forms of a selection use (contacts.paging.Selection)."""

    rows: Q
    index: Q
    patterns: tuple[str, ...] = ()

    def count(self) -> int:
        """How many of the org's contacts match, counted through the trigram index alone (contacts
        migration 0008): for a caller who sees the whole org and filters on nothing else (joined
        back to the contacts and checked again, a term in 163,362 of 1M contacts took 2.4 s to
        count, against 285 ms for PostgreSQL's own count)."""
        with connection.cursor() as cursor:
            cursor.execute(TEXT_MATCH_COUNT, [list(self.patterns)])
            return cursor.fetchone()[0]

    @classmethod
    def of(cls, q: str) -> QText:
        patterns = like_patterns(q)
        if not patterns:
            return cls(Q(), Q())
        common = cls(q_rows(q), Q(pk__in=RawSQL(TEXT_MATCHES, [patterns])), tuple(patterns))
        with connection.cursor() as cursor:
            cursor.execute(IN_NEWEST, [patterns])
            if cursor.fetchone()[0] >= PAGE:
                return common
            cursor.execute(f"{TEXT_MATCHES} LIMIT {FEW + 1}", [patterns])
            ids = [row[0] for row in cursor.fetchall()]
        if len(ids) <= FEW:
            return cls(Q(pk__in=ids), Q())  # a rare term: its ids, known
        return common
