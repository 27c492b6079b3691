"""What every page of the contacts admin shares: a paginator that never counts a million rows,
small parsers, how values are shown, and whom the services act as."""

from __future__ import annotations

import json
from functools import cached_property

import phonenumbers
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.utils.safestring import mark_safe

from crm.errors import DomainError
from orgs.admin import staff_scope
from orgs.models import Membership


class CappedCountPaginator(Paginator):
    """Counts exactly up to CAP rows; past that, the planner's estimate (never below CAP)."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        exact = self.object_list.order_by()[: self.CAP + 1].count()
        if exact <= self.CAP:
            return exact
        try:
            plan = json.loads(self.object_list.order_by().explain(format="json"))
            return max(self.CAP, int(plan[0]["Plan"]["Plan Rows"]))
        except (ValueError, KeyError, IndexError, TypeError):
            return self.CAP


class FastListMixin:
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50


def acting_membership(request, org_id: int) -> Membership:
    """Whom the services act as in `org_id`: the staff user's membership there (a superuser who is not
    a member: an owner of the whole org, see orgs.admin.StaffScope.membership); others are refused."""
    membership = staff_scope(request).membership(org_id)
    if membership is None:
        raise PermissionDenied
    return membership


def as_staff(membership: Membership) -> bool:
    """The stand-in of a superuser who is not a member: services then act on the whole org."""
    return membership.pk is None


def by_org(pairs) -> dict[int, list[int]]:
    """{org id: [ids]} of (org id, id) pairs."""
    grouped: dict[int, list[int]] = {}
    for org_id, pk in pairs:
        grouped.setdefault(org_id, []).append(pk)
    return grouped


def parse_ids(raw: str | list[str]) -> list[int]:
    """Distinct ids, in order, from "1,2,3" or a list of them; junk ignored."""
    parts = raw if isinstance(raw, list) else raw.split(",")
    ids = [int(p) for p in (s.strip() for s in parts) if p.isascii() and p.isdigit() and len(p) <= 18]
    return list(dict.fromkeys(ids))


def shown(value) -> str:
    """A history, merge or column value as text: lists joined, booleans as yes/no, empty as —."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def readable_phone(e164: str | None) -> str:
    """`+14155552671` as `+1 415-555-2671` (international: the list mixes regions)."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def person(user) -> str:
    """A user as staff know them: their name, else their email, else their login."""
    return user.get_full_name() or user.email or user.username


DNC_BADGE = mark_safe('<span class="dnc-badge">Do not contact</span>')


def dnc_badge(dnc: bool) -> str:
    """A badge only on contacts that must not be contacted; nothing on the others."""
    return DNC_BADGE if dnc else ""


def error_text(exc: DomainError) -> str:
    details = [f"{e.attr}: {e.detail}" if e.attr else e.detail for e in exc.errors]
    return " ".join(dict.fromkeys([exc.detail, *details]))
