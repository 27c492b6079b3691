"""Operators per filter kind: the value each accepts (validated and typed) and the `Q` it emits.

One class per filter kind (`customization.field_types.FilterKind`), registered in `KINDS`;
its `op_<name>` methods build the `Q`. The shape of an operator's value (none, a scalar, a
list, a `[lo, hi]` range, a relative span) is shared by all kinds; the scalar is typed by the
kind. No SQL is written by hand.

Every condition is served by an index under row-level security, because it compares only with
operators PostgreSQL ships as leakproof (`=`, `<`, `>` on bigint, float, date, timestamptz and
text) on indexes that lead with org_id (DESIGN §2, contacts migration 0006):
- tags: `EXISTS (contact_tag WHERE tag_id = <id>)`, the names resolved to catalog ids first;
- custom values: `EXISTS (field_value WHERE field_id = <id> AND <typed column> <op> <value>)`;
- text compares values case-folded in Python (customization.text.fold) with the stored folded
  forms: `Contact.folded`, `email_key`, `FieldValue.text_key`/`folded`.
Empty means no row (custom values, tags) or "" / NULL (built-in columns).
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import math
import operator
import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, ClassVar

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models import lookups as L
from django.db.models.fields.json import KeyTextTransform

from contacts.models import ContactTag, FieldValue
from contacts.search.fields import SearchField
from crm.limits import MAX_LIST_ITEMS, MAX_SPAN_AMOUNT, MAX_VALUE_TEXT, SPAN_UNITS
from customization.catalog import normalize_tag
from customization.field_types import (
    MAX_TEXT,
    OPERATORS_BY_KIND,
    FieldValueError,
    FilterKind,
    match_option,
    normalize_phone,
    parse_date,
    parse_datetime,
)
from customization.text import fold, prefix_upper_bound, text_key

MAX_USER_ID = 2**63 - 1

# The shape of each operator's value; operators not listed take one scalar.
NO_VALUE, SCALAR, LIST, RANGE, SPAN = "none", "scalar", "list", "range", "span"
OP_SHAPES: dict[str, str] = {
    "is_empty": NO_VALUE,
    "is_not_empty": NO_VALUE,
    "in": LIST,
    "not_in": LIST,
    "contains_any": LIST,
    "contains_all": LIST,
    "between": RANGE,
    "within_last": SPAN,
    "more_than_ago": SPAN,
    "within_next": SPAN,
    "more_than_ahead": SPAN,
    "today": NO_VALUE,
}
ALL_OPERATORS: tuple[str, ...] = tuple(sorted({op for ops in OPERATORS_BY_KIND.values() for op in ops}))


def shape_of(op: str) -> str:
    return OP_SHAPES.get(op, SCALAR)


class ValueProblem(Exception):
    """A condition's value does not fit its operator/field. `path` is appended to the value's attr."""

    def __init__(self, code: str, detail: str, path: str = ""):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.path = path


@dataclass(frozen=True)
class Context:
    """What values are interpreted against: the org's time zone and region, "now", the catalog
    ids of the tag names the request names (resolved by the compiler in one query), and what each
    saved view it names selects (`views`: the org's contacts in it, or why it cannot be applied;
    resolved by the compiler, which compiles those views with this same "now")."""

    tz: zoneinfo.ZoneInfo
    now: dt.datetime  # aware, UTC
    region: str = "US"
    tag_ids: Mapping[str, int] = dataclass_field(default_factory=dict)
    views: Mapping[int, QuerySet | ValueProblem] = dataclass_field(default_factory=dict)

    @classmethod
    def for_org(cls, org, now: dt.datetime | None = None) -> Context:
        try:
            tz = zoneinfo.ZoneInfo(org.timezone or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = zoneinfo.ZoneInfo("UTC")
        return cls(tz=tz, now=(now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC), region=org.default_region)


# --- the stored forms ------------------------------------------------------------------------

NOTHING = Q(pk__in=[])


class SideExists(Exists):
    """EXISTS over the contact's tag or value rows matching a condition, which also keeps those rows
    uncorrelated (`side`): a list filtered by this one condition can walk them on their own, in
    list order, through their (org_id, tag or field, created_at) index (contacts/paging.py)."""

    def __init__(self, side, **extra):
        self.side = side
        super().__init__(side.filter(org_id=OuterRef("org_id"), contact_id=OuterRef("pk")), **extra)


def custom_exists(field: SearchField, *conditions: Q, **lookups) -> Q:
    """The contact has a stored item of this custom field matching the conditions (FieldValue columns)."""
    return Q(SideExists(FieldValue.objects.filter(*conditions, field_id=field.custom_field_id, **lookups)))


def tag_exists(**lookups) -> Q:
    return Q(SideExists(ContactTag.objects.filter(**lookups)))


def side_of(condition: Q):
    """The tag or value rows of `condition` if it is one positive SideExists, else None."""
    if condition.negated or len(condition.children) != 1:
        return None
    (child,) = condition.children
    if isinstance(child, Q):
        return side_of(child)
    return child.side if isinstance(child, SideExists) else None  # ~SideExists is a NegatedExpression


def drivers_of(group: Q) -> list[tuple[QuerySet, Q]]:
    """`(side, rest)` for each positive SideExists AND-ed in `group`: the contacts of its tag or value
    rows `side` hold every contact of the group, and those of them meeting `rest` (the group's
    other conditions) are the group's."""
    if group.negated or (group.connector != Q.AND and len(group.children) > 1):
        return []
    drivers = []
    for index, child in enumerate(group.children):
        others = Q(*group.children[:index], *group.children[index + 1 :])
        if isinstance(child, Q):
            drivers += [(side, others & rest) for side, rest in drivers_of(child)]
        elif isinstance(child, SideExists):  # ~SideExists is a NegatedExpression
            drivers.append((child.side, others))
    return drivers


def custom_sort_value(field: SearchField, column: str):
    """The first stored item's typed column, for ORDER BY (NULL when absent)."""
    rows = FieldValue.objects.filter(
        org_id=OuterRef("org_id"), contact_id=OuterRef("pk"), field_id=field.custom_field_id
    ).order_by("position")
    return Subquery(rows.values(column)[:1])


def folded_equals(values: list[str]) -> Q:
    """FieldValue rows whose folded text is one of `values` (folded), through the indexed text_key."""
    return Q(text_key__in=sorted({text_key(v) for v in values})) & Q(folded__in=sorted(set(values)))


def folded_prefix(prefix: str) -> Q:
    """FieldValue rows whose folded text starts with `prefix` (folded): a range of the text_key index
    ("C" collation: code point order), exact when the prefix fits in text_key."""
    key = text_key(prefix)
    upper = prefix_upper_bound(key)
    condition = Q(text_key__gte=key) & (Q(text_key__lt=upper) if upper is not None else Q())
    return condition if key == prefix else condition & Q(folded__startswith=prefix)


# --- shared value parsing -------------------------------------------------------------------


def clean_text(text: str) -> bool:
    """Storable in PostgreSQL text: no NUL, no lone surrogates (JSON can carry both)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def require_text(raw: Any, max_length: int = MAX_TEXT) -> str:
    if not isinstance(raw, str):
        raise ValueProblem("wrong_type", "Expected a string.")
    if not raw.strip():
        raise ValueProblem("blank", "Expected a non-blank string; use is_empty to find empty fields.")
    if len(raw) > max_length:
        raise ValueProblem("too_long", f"At most {max_length} characters.")
    if not clean_text(raw):
        raise ValueProblem("invalid", "NUL characters and unpaired surrogates are not allowed.")
    return raw


def require_list(raw: Any) -> list:
    if not isinstance(raw, list):
        raise ValueProblem("wrong_type", "Expected a list.")
    if not raw:
        raise ValueProblem("empty", "Expected at least one item.")
    if len(raw) > MAX_LIST_ITEMS:
        raise ValueProblem("too_many", f"At most {MAX_LIST_ITEMS} items.")
    return raw


@dataclass(frozen=True)
class Day:
    """A date-only value on a datetime field: that whole day in the org's time zone, [start, end)."""

    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Span:
    amount: int
    unit: str


def _temporal_problem(exc: FieldValueError) -> str:
    if exc.code == "out_of_range":
        return str(exc)
    return "Expected an ISO date (YYYY-MM-DD) or datetime."


def day_bounds(day: dt.date, tz: zoneinfo.ZoneInfo) -> Day:
    try:
        start = dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ValueProblem("out_of_range", "Date out of the supported range.")
    return Day(start, end)


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """`months` later (earlier when negative), the day clamped to the month's end (31 Mar − 1 = 29 Feb)."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    if year < 1:
        raise OverflowError
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


AGO, AHEAD = -1, 1  # the direction a span is counted from now


def span_cutoff(span: Span, ctx: Context, direction: int = AGO) -> dt.datetime:
    """Now minus (AGO) or plus (AHEAD) the span, counted on the org's wall clock (so "1 day" across
    DST is a calendar day)."""
    try:
        if span.unit == "hours":
            return ctx.now + direction * dt.timedelta(hours=span.amount)
        local = ctx.now.astimezone(ctx.tz).replace(tzinfo=None)
        if span.unit in ("days", "weeks"):
            local += direction * dt.timedelta(days=span.amount * (7 if span.unit == "weeks" else 1))
        else:
            local = add_months(local, direction * span.amount * (12 if span.unit == "years" else 1))
        return local.replace(tzinfo=ctx.tz).astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ValueProblem("out_of_range", "That span reaches outside the supported range of dates.")


def cutoff_day(span: Span, ctx: Context, direction: int = AGO) -> dt.date:
    """The date, in the org's time zone, of now minus or plus the span."""
    try:
        return span_cutoff(span, ctx, direction).astimezone(ctx.tz).date()
    except OverflowError:  # an instant at the calendar's edge has no date in the org's time zone
        raise ValueProblem("out_of_range", "That span reaches outside the supported range of dates.")


def local_today(ctx: Context) -> dt.date:
    return ctx.now.astimezone(ctx.tz).date()


def parse_span(raw: Any) -> Span:
    if not isinstance(raw, dict):
        raise ValueProblem("wrong_type", 'Expected {"amount": <positive integer>, "unit": "days"}.')
    unknown = sorted(set(raw) - {"amount", "unit"}, key=str)
    if unknown:
        raise ValueProblem("unknown_key", f"Unexpected key {str(unknown[0])[:50]!r}.")  # repr escapes surrogates
    amount, unit = raw.get("amount"), raw.get("unit")
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise ValueProblem("wrong_type", "Expected a positive integer.", "amount")
    if not 1 <= amount <= MAX_SPAN_AMOUNT:
        raise ValueProblem("out_of_range", f"Expected an integer between 1 and {MAX_SPAN_AMOUNT}.", "amount")
    if unit not in SPAN_UNITS:
        raise ValueProblem("invalid_choice", f"Expected one of: {', '.join(SPAN_UNITS)}.", "unit")
    return Span(amount, unit)


# --- the kinds ------------------------------------------------------------------------------


class Kind:
    """The operators of one filter kind. Subclasses implement `scalar()` and `op_<name>()`."""

    kind: ClassVar[str]

    def operators(self) -> tuple[str, ...]:
        return OPERATORS_BY_KIND[self.kind]

    def parse(self, field: SearchField, op: str, raw: Any, present: bool, ctx: Context) -> Any:
        shape = shape_of(op)
        if shape == NO_VALUE:
            if present and raw is not None:
                raise ValueProblem("unexpected_value", f"{op} takes no value.")
            return None
        if not present:
            raise ValueProblem("required", f"{op} needs a value.")
        if shape == SCALAR:
            return self.scalar(field, op, raw, ctx)
        if shape == SPAN:
            return parse_span(raw)
        items = require_list(raw)
        if shape == RANGE and len(items) != 2:
            raise ValueProblem("wrong_shape", "Expected [lo, hi].")
        values = []
        for index, item in enumerate(items):
            try:
                values.append(self.scalar(field, op, item, ctx))
            except ValueProblem as problem:
                problem.path = f"{index}.{problem.path}".rstrip(".")
                raise
        return values

    def scalar(self, field: SearchField, op: str, raw: Any, ctx: Context) -> Any:
        raise NotImplementedError

    def build(self, field: SearchField, op: str, value: Any, ctx: Context) -> Q:
        return getattr(self, f"op_{op}")(field, value, ctx)

    def empty(self, field: SearchField) -> Q:
        if field.is_custom:
            return ~custom_exists(field)  # a cleared value has no row
        return Q(**{f"{field.column}__isnull": True})

    def op_is_empty(self, field, value, ctx) -> Q:
        return self.empty(field)

    def op_is_not_empty(self, field, value, ctx) -> Q:
        return ~self.empty(field)

    def sort_expression(self, field: SearchField):
        return F(field.column)


KINDS: dict[str, Kind] = {}


def register(cls: type[Kind]) -> type[Kind]:
    KINDS[cls.kind] = cls()
    return cls


def _option(field: SearchField, text: str) -> str:
    option = match_option(text, list(field.options or ()))
    if option is None:
        raise ValueProblem("invalid_choice", f"Not one of the options: {', '.join(field.options or ())}.")
    return option


@register
class TextKind(Kind):
    """Case-insensitive text (compared case-folded). Negative operators also match empty fields."""

    kind = FilterKind.TEXT

    def scalar(self, field, op, raw, ctx):
        text = require_text(raw)
        if op in ("eq", "neq", "in", "not_in"):
            if field.type == "phone":
                try:  # phones are stored E.164: compare what the user typed in that form
                    return normalize_phone(text.strip(), ctx.region)
                except FieldValueError:
                    return text
            if field.options is not None:
                return _option(field, text)
        return text

    def expression(self, field):
        """The folded form of a built-in column (phones are E.164: no case)."""
        if field.column == "email":
            return F("email_key")
        if field.column == "phone":
            return F("phone")
        return KeyTextTransform(field.column, "folded")

    def empty(self, field):
        if field.is_custom:
            return ~custom_exists(field)
        q = Q(**{field.column: ""})
        return q | Q(**{f"{field.column}__isnull": True}) if field.nullable else q

    def _exact(self, field, values: list[str]) -> Q:
        folded = [fold(v) for v in values]
        if field.is_custom:
            return custom_exists(field, folded_equals(folded))
        return Q(L.In(self.expression(field), sorted(set(folded))))

    def op_eq(self, field, value, ctx):
        return self._exact(field, [value])

    def op_neq(self, field, value, ctx):
        return ~self._exact(field, [value]) | self.empty(field)

    def op_in(self, field, value, ctx):
        return self._exact(field, value)

    def op_not_in(self, field, value, ctx):
        return ~self._exact(field, value) | self.empty(field)

    def op_contains(self, field, value, ctx):
        if field.is_custom:
            return custom_exists(field, folded__contains=fold(value))
        return Q(L.Contains(self.expression(field), fold(value)))

    def op_not_contains(self, field, value, ctx):
        return ~self.op_contains(field, value, ctx) | self.empty(field)

    def op_starts_with(self, field, value, ctx):
        if field.is_custom:
            return custom_exists(field, folded_prefix(fold(value)))
        return Q(L.StartsWith(self.expression(field), fold(value)))

    def op_ends_with(self, field, value, ctx):
        if field.is_custom:
            return custom_exists(field, folded__endswith=fold(value))
        return Q(L.EndsWith(self.expression(field), fold(value)))

    def sort_expression(self, field):
        return custom_sort_value(field, "folded") if field.is_custom else F(field.column)


@register
class TagsKind(Kind):
    """The contact's tags (catalog names) or a custom multi_select (canonical options)."""

    kind = FilterKind.TAGS

    def scalar(self, field, op, raw, ctx):
        text = require_text(raw, MAX_VALUE_TEXT)
        if field.options is not None:
            return _option(field, text)
        try:
            return normalize_tag(text)
        except ValueError as exc:
            raise ValueProblem("invalid_tag", str(exc))

    def empty(self, field):
        return ~custom_exists(field) if field.is_custom else ~tag_exists()

    def _has(self, field, value: str, ctx) -> Q:
        if field.is_custom:
            return custom_exists(field, folded_equals([fold(value)]))
        tag_id = ctx.tag_ids.get(value)
        return tag_exists(tag_id=tag_id) if tag_id is not None else NOTHING  # not in the catalog: on no one

    def op_contains(self, field, value, ctx):
        return self._has(field, value, ctx)

    def op_not_contains(self, field, value, ctx):
        return ~self._has(field, value, ctx)  # no row matches: empty contacts included

    def op_contains_all(self, field, value, ctx):
        q = Q()
        for item in sorted(set(value)):
            q &= self._has(field, item, ctx)
        return q

    def op_contains_any(self, field, value, ctx):
        values = sorted(set(value))
        if field.is_custom:
            return custom_exists(field, folded_equals([fold(v) for v in values]))
        ids = sorted(ctx.tag_ids[v] for v in values if v in ctx.tag_ids)
        return tag_exists(tag_id__in=ids) if ids else NOTHING


@register
class BooleanKind(Kind):
    """`dnc`, or a custom boolean (stored as the number 1 or 0)."""

    kind = FilterKind.BOOLEAN

    def scalar(self, field, op, raw, ctx):
        if not isinstance(raw, bool):
            raise ValueProblem("wrong_type", "Expected true or false.")
        return raw

    def op_eq(self, field, value, ctx):
        if field.is_custom:
            return custom_exists(field, number=1.0 if value else 0.0)
        return Q(**{field.column: value})

    def sort_expression(self, field):
        return custom_sort_value(field, "number") if field.is_custom else F(field.column)


class _OrderedKind(Kind):
    """Kinds whose values order (numbers, dates, datetimes): comparisons of a built-in column or of a
    custom value's typed column (`stored_column`). Every bound of one condition applies to the same
    stored item, in one index range."""

    stored_column: ClassVar[str]

    def compare(self, field, bounds: list[tuple[str, Any]]) -> Q:
        """`bounds`: (lookup, value) pairs such as ("gte", 5), ANDed."""
        if field.is_custom:
            return custom_exists(field, **{f"{self.stored_column}__{lookup}": value for lookup, value in bounds})
        q = Q()
        for lookup, value in bounds:
            q &= Q(**{f"{field.column}__{lookup}": value})
        return q

    def lower_bound(self, value, inclusive: bool) -> tuple[str, Any]:
        return ("gte" if inclusive else "gt", value)

    def upper_bound(self, value, inclusive: bool) -> tuple[str, Any]:
        return ("lte" if inclusive else "lt", value)

    def op_gt(self, field, value, ctx):
        return self.compare(field, [self.lower_bound(value, False)])

    def op_gte(self, field, value, ctx):
        return self.compare(field, [self.lower_bound(value, True)])

    def op_lt(self, field, value, ctx):
        return self.compare(field, [self.upper_bound(value, False)])

    def op_lte(self, field, value, ctx):
        return self.compare(field, [self.upper_bound(value, True)])

    def op_between(self, field, value, ctx):
        lo, hi = value
        return self.compare(field, [self.lower_bound(lo, True), self.upper_bound(hi, True)])

    def op_eq(self, field, value, ctx):
        return self.compare(field, [("exact", value)])

    def sort_expression(self, field):
        return custom_sort_value(field, self.stored_column) if field.is_custom else F(field.column)


@register
class NumberKind(_OrderedKind):
    kind = FilterKind.NUMBER
    stored_column = "number"

    def scalar(self, field, op, raw, ctx):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueProblem("wrong_type", "Expected a number.")
        try:
            number = float(raw)
        except OverflowError:
            raise ValueProblem("out_of_range", "Number too large.")
        if not math.isfinite(number) or abs(number) >= 1e15:
            raise ValueProblem("out_of_range", "Numbers must be finite and smaller than 1e15 in magnitude.")
        return number

    def op_neq(self, field, value, ctx):
        return ~self.op_eq(field, value, ctx) | self.empty(field)


@register
class DateKind(_OrderedKind):
    """Calendar dates (custom date fields)."""

    kind = FilterKind.DATE
    stored_column = "day"

    def scalar(self, field, op, raw, ctx):
        try:
            if isinstance(raw, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", raw):
                return parse_date(raw)
            return parse_datetime(raw, str(ctx.tz.key)).astimezone(ctx.tz).date()
        except FieldValueError as exc:
            raise ValueProblem(exc.code, _temporal_problem(exc))
        except OverflowError:  # an instant at the calendar's edge has no date in the org's time zone
            raise ValueProblem("out_of_range", f"{raw!r} has no date in the organization's time zone.")

    def op_within_last(self, field, value, ctx):
        return self.compare(field, [self.lower_bound(cutoff_day(value, ctx), True)])

    def op_more_than_ago(self, field, value, ctx):
        return self.compare(field, [self.upper_bound(cutoff_day(value, ctx), False)])

    def op_within_next(self, field, value, ctx):
        return self.compare(
            field, [self.lower_bound(local_today(ctx), True), self.upper_bound(cutoff_day(value, ctx, AHEAD), True)]
        )

    def op_more_than_ahead(self, field, value, ctx):
        return self.compare(field, [self.lower_bound(cutoff_day(value, ctx, AHEAD), False)])

    def op_today(self, field, value, ctx):
        return self.compare(field, [("exact", local_today(ctx))])


@register
class DatetimeKind(_OrderedKind):
    """Instants (created_at, updated_at, custom datetime). A date-only value is that whole day in the
    org's time zone."""

    kind = FilterKind.DATETIME
    stored_column = "moment"

    def scalar(self, field, op, raw, ctx):
        try:
            if isinstance(raw, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", raw):
                return day_bounds(parse_date(raw), ctx.tz)
            return parse_datetime(raw, str(ctx.tz.key))
        except FieldValueError as exc:
            raise ValueProblem(exc.code, _temporal_problem(exc))

    def lower_bound(self, value, inclusive):
        if isinstance(value, Day):  # after the day ends / from its start
            return ("gte", value.start if inclusive else value.end)
        return super().lower_bound(value, inclusive)

    def upper_bound(self, value, inclusive):
        if isinstance(value, Day):  # before the day starts / until it ends
            return ("lt", value.end if inclusive else value.start)
        return super().upper_bound(value, inclusive)

    def op_eq(self, field, value, ctx):
        if isinstance(value, Day):
            return self.compare(field, [self.lower_bound(value, True), self.upper_bound(value, True)])
        return super().op_eq(field, value, ctx)

    def op_within_last(self, field, value, ctx):
        return self.compare(field, [("gte", span_cutoff(value, ctx))])

    def op_more_than_ago(self, field, value, ctx):
        return self.compare(field, [("lt", span_cutoff(value, ctx))])

    def op_within_next(self, field, value, ctx):
        return self.compare(field, [("gte", ctx.now), ("lte", span_cutoff(value, ctx, AHEAD))])

    def op_more_than_ahead(self, field, value, ctx):
        return self.compare(field, [("gt", span_cutoff(value, ctx, AHEAD))])

    def op_today(self, field, value, ctx):
        return self.op_eq(field, day_bounds(local_today(ctx), ctx.tz), ctx)


@register
class UserKind(Kind):
    """`assigned_to`: user ids."""

    kind = FilterKind.USER

    def scalar(self, field, op, raw, ctx):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueProblem("wrong_type", "Expected a user id (integer).")
        if not 1 <= raw <= MAX_USER_ID:
            raise ValueProblem("out_of_range", "Expected a positive user id.")
        return raw

    def op_eq(self, field, value, ctx):
        return Q(**{field.column: value})

    def op_neq(self, field, value, ctx):
        return ~Q(**{field.column: value}) | self.empty(field)

    def op_in(self, field, value, ctx):
        return Q(**{f"{field.column}__in": sorted(set(value))})

    def op_not_in(self, field, value, ctx):
        return ~self.op_in(field, value, ctx) | self.empty(field)


UNKNOWN_VIEW = "No saved view with this id in this organization."


@register
class ViewKind(Kind):
    """The `view` pseudo-field: membership of saved views, by id. What each view selects was resolved
    by the compiler (`Context.views`, the org's contacts in it); the subquery is ANDed with the
    caller's already scoped rows, so it only ever narrows them."""

    kind = FilterKind.VIEW

    def scalar(self, field, op, raw, ctx):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueProblem("wrong_type", "Expected a saved view id (integer).")
        members = ctx.views.get(raw)
        if members is None:  # another org's view reads the same as none: ids cannot be probed
            raise ValueProblem("unknown_view", UNKNOWN_VIEW)
        if isinstance(members, ValueProblem):
            raise ValueProblem(members.code, members.detail)
        return raw

    def members(self, ids: list[int], ctx) -> Q:
        """In any of the views: one subquery over the org's contacts, the views' conditions ORed."""
        rows = functools.reduce(operator.or_, (ctx.views[view_id] for view_id in sorted(set(ids))))
        return Q(pk__in=rows.values("pk"))

    def op_in(self, field, value, ctx):
        return self.members(value, ctx)

    def op_not_in(self, field, value, ctx):
        return ~self.members(value, ctx)


def kind_of(field: SearchField) -> Kind:
    return KINDS[field.kind]
