"""`q`: a case- and accent-insensitive substring of name, email or company, or of the phone by digits.

`search_text` holds those values folded without accents (contacts.normalize.build_search_text),
and `q` is folded the same way, so matching is a plain `LIKE '%term%'`, served by the trigram
index. Under row-level security a LIKE cannot use an index (PostgreSQL does not ship it as
leakproof), so requests look the term up in the view `contacts_text_match`, which reads the
index for the current org only (contacts migration 0006), and keep the contacts whose id it
returns. Staff in the admin, who are not confined to one org, match the column directly.
"""

from __future__ import annotations

import re

from django.db.models import Q

from contacts.models import ContactText
from customization.text import fold_unaccented


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


def q_condition(q: str, *, org_scoped: bool = True) -> Q:
    """Contacts matching `q` (an empty `q` matches every contact)."""
    terms = q_terms(q)
    if not terms:
        return Q()
    haystack = Q()
    for term in terms:
        haystack |= Q(search_text__contains=term)
    if not org_scoped:
        return haystack
    return Q(pk__in=ContactText.objects.filter(haystack).values("id"))


def q_filter(queryset, q: str, *, org_scoped: bool = True):
    return queryset.filter(q_condition(q, org_scoped=org_scoped))
