"""Operators per filter kind: the value each accepts (validated and typed) and the `Q` it emits.

One class per filter kind (`customization.field_types.FilterKind`), registered in `KINDS`;
its `op_<name>` methods build the `Q`. The shape of an operator's value (none, a scalar, a
list, a `[lo, hi]` range, a relative span) is shared by all kinds; the scalar is typed by the
kind. No SQL is written by hand: built-in columns go through ORM lookups, custom values
through `KeyTransform`/`KeyTextTransform` (the key is passed as a value, never parsed as a
lookup path) and JSONB containment.

Index-friendly shapes (DESIGN §5): tags use `@>`/`&&` (GIN on `tags`); custom equality uses
`custom @> {"key": value}` (GIN `jsonb_path_ops`); `email` equality uses `lower(email)`
(the unique index); phone equality compares E.164 (btree `(org_id, phone)`).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    DateField,
    DateTimeField,
    F,
    FloatField,
    Func,
    Q,
    Value,
    When,
)
from django.db.models import lookups as L
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Lower

from contacts.search.fields import SearchField
from customization.catalog import normalize_tag
from customization.field_types import (
    MAX_TEXT,
    OPERATORS_BY_KIND,
    FieldValueError,
    FilterKind,
    normalize_phone,
    parse_date,
    parse_datetime,
)

MAX_LIST_ITEMS = 100
MAX_USER_ID = 2**63 - 1
SPAN_UNITS = ("hours", "days", "weeks", "months", "years")
MAX_SPAN_AMOUNT = 100_000

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
    """What values are interpreted against: the org's time zone and region, and "now"."""

    tz: zoneinfo.ZoneInfo
    now: dt.datetime  # aware, UTC
    region: str = "US"

    @classmethod
    def for_org(cls, org, now: dt.datetime | None = None) -> Context:
        try:
            tz = zoneinfo.ZoneInfo(org.timezone or "UTC")
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            tz = zoneinfo.ZoneInfo("UTC")
        return cls(tz=tz, now=(now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC), region=org.default_region)


# --- JSONB expressions for custom values ---------------------------------------------------


def json_value(key: str):
    """`custom -> key` (jsonb)."""
    return KeyTransform(key, "custom")


def json_text(key: str):
    """`custom ->> key` (text; NULL when absent or JSON null)."""
    return KeyTextTransform(key, "custom")


def json_type(key: str):
    return Func(json_value(key), function="jsonb_typeof", output_field=CharField())


def has_value(key: str, value: Any) -> Q:
    """`custom @> {"key": value}`: served by the GIN jsonb_path_ops index."""
    return Q(custom__contains={key: value})


def custom_empty(key: str) -> Q:
    """Absent, null, "" or []."""
    return (
        Q(L.IsNull(json_text(key), True))
        | has_value(key, "")
        | (Q(L.Exact(json_type(key), "array")) & Q(L.Exact(json_text(key), "[]")))
    )


DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"


def custom_value(key: str, function: str, output_field):
    """`crm_custom_<type>(custom, key)`: the typed value, NULL unless stored as that type.

    SQL functions from contacts migration 0004: immutable (so each text/number/date field
    has a per-org expression index on exactly this) and leakproof (so row-level security
    lets the planner use it).
    """
    return Func(F("custom"), Value(key), function=function, output_field=output_field)


def custom_number(key: str):
    """The value as a number, NULL unless it is a JSON number (so a stray string never raises)."""
    return custom_value(key, "crm_custom_number", FloatField())


def custom_date(key: str):
    return custom_value(key, "crm_custom_date", DateField())


def custom_datetime(key: str):
    return custom_value(key, "crm_custom_datetime", DateTimeField())


def custom_text_lower(key: str):
    return custom_value(key, "crm_custom_text", CharField())


def custom_boolean(key: str):
    return Case(
        When(L.Exact(json_type(key), "boolean"), then=Cast(json_text(key), BooleanField())),
        default=None,
        output_field=BooleanField(),
    )


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


def day_bounds(day: dt.date, tz: zoneinfo.ZoneInfo) -> Day:
    try:
        start = dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ValueProblem("out_of_range", "Date out of the supported range.")
    return Day(start, end)


def subtract_months(moment: dt.datetime, months: int) -> dt.datetime:
    index = moment.year * 12 + (moment.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    if year < 1:
        raise OverflowError
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def span_cutoff(span: Span, ctx: Context) -> dt.datetime:
    """Now minus the span, counted on the org's wall clock (so "1 day" across DST is a calendar day)."""
    try:
        if span.unit == "hours":
            return ctx.now - dt.timedelta(hours=span.amount)
        local = ctx.now.astimezone(ctx.tz).replace(tzinfo=None)
        if span.unit in ("days", "weeks"):
            local -= dt.timedelta(days=span.amount * (7 if span.unit == "weeks" else 1))
        else:
            local = subtract_months(local, span.amount * (12 if span.unit == "years" else 1))
        return local.replace(tzinfo=ctx.tz).astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ValueProblem("out_of_range", "That span reaches outside the supported range of dates.")


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
            return custom_empty(field.custom_key)
        return Q(**{f"{field.column}__isnull": True})

    def op_is_empty(self, field, value, ctx) -> Q:
        return self.empty(field)

    def op_is_not_empty(self, field, value, ctx) -> Q:
        return ~self.empty(field)

    def sort_expression(self, field: SearchField):
        return F(field.column) if not field.is_custom else json_text(field.custom_key)


KINDS: dict[str, Kind] = {}


def register(cls: type[Kind]) -> type[Kind]:
    KINDS[cls.kind] = cls()
    return cls


@register
class TextKind(Kind):
    """Case-insensitive text. Negative operators also match empty fields."""

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
                for option in field.options:
                    if option.lower() == text.strip().lower():
                        return option
                raise ValueProblem("invalid_choice", f"Not one of the options: {', '.join(field.options)}.")
        return text

    def expression(self, field):
        return json_text(field.custom_key) if field.is_custom else F(field.column)

    def empty(self, field):
        if field.is_custom:
            return custom_empty(field.custom_key)
        q = Q(**{field.column: ""})
        return q | Q(**{f"{field.column}__isnull": True}) if field.nullable else q

    def _exact(self, field, values: list[str]) -> Q:
        # Canonical stored forms (select options, E.164 phones) match by containment or
        # plain equality (indexed); free text by lower() on both sides.
        if field.is_custom and (field.options is not None or field.type == "phone"):
            q = Q()
            for value in values:
                q |= has_value(field.custom_key, value)
            return q
        if field.type == "phone":
            return Q(phone__in=values)
        lowered = custom_text_lower(field.custom_key) if field.is_custom else Lower(self.expression(field))
        return Q(L.In(lowered, sorted({v.lower() for v in values})))

    def op_eq(self, field, value, ctx):
        return self._exact(field, [value])

    def op_neq(self, field, value, ctx):
        return ~self._exact(field, [value]) | self.empty(field)

    def op_in(self, field, value, ctx):
        return self._exact(field, value)

    def op_not_in(self, field, value, ctx):
        return ~self._exact(field, value) | self.empty(field)

    def op_contains(self, field, value, ctx):
        return Q(L.IContains(self.expression(field), value))

    def op_not_contains(self, field, value, ctx):
        return ~self.op_contains(field, value, ctx) | self.empty(field)

    def op_starts_with(self, field, value, ctx):
        return Q(L.IStartsWith(self.expression(field), value))

    def op_ends_with(self, field, value, ctx):
        return Q(L.IEndsWith(self.expression(field), value))


@register
class TagsKind(Kind):
    """The contact's tags (normalized lowercase names) or a custom multi_select (canonical options)."""

    kind = FilterKind.TAGS

    def scalar(self, field, op, raw, ctx):
        text = require_text(raw, 1000)
        if field.options is not None:
            for option in field.options:
                if option.lower() == text.strip().lower():
                    return option
            raise ValueProblem("invalid_choice", f"Not one of the options: {', '.join(field.options)}.")
        try:
            return normalize_tag(text)
        except ValueError as exc:
            raise ValueProblem("invalid_tag", str(exc))

    def empty(self, field):
        if field.is_custom:
            return custom_empty(field.custom_key)
        return Q(tags=[]) | Q(tags__isnull=True)

    def _all(self, field, values: list[str]) -> Q:
        if field.is_custom:
            return has_value(field.custom_key, values)
        return Q(tags__contains=values)

    def op_contains(self, field, value, ctx):
        return self._all(field, [value])

    def op_not_contains(self, field, value, ctx):
        return ~self._all(field, [value]) | self.empty(field)

    def op_contains_all(self, field, value, ctx):
        return self._all(field, sorted(set(value)))

    def op_contains_any(self, field, value, ctx):
        values = sorted(set(value))
        if not field.is_custom:
            return Q(tags__overlap=values)
        q = Q()
        for item in values:  # a BitmapOr of GIN probes
            q |= has_value(field.custom_key, [item])
        return q


@register
class BooleanKind(Kind):
    kind = FilterKind.BOOLEAN

    def scalar(self, field, op, raw, ctx):
        if not isinstance(raw, bool):
            raise ValueProblem("wrong_type", "Expected true or false.")
        return raw

    def op_eq(self, field, value, ctx):
        if field.is_custom:
            return has_value(field.custom_key, value)
        return Q(**{field.column: value})

    def sort_expression(self, field):
        return F(field.column) if not field.is_custom else custom_boolean(field.custom_key)


class _OrderedKind(Kind):
    """Kinds whose values order (numbers, dates, datetimes): comparisons on a typed expression."""

    def expression(self, field):
        raise NotImplementedError

    def lower(self, field, value, inclusive: bool) -> Q:
        lookup = L.GreaterThanOrEqual if inclusive else L.GreaterThan
        return Q(lookup(self.expression(field), value))

    def upper(self, field, value, inclusive: bool) -> Q:
        lookup = L.LessThanOrEqual if inclusive else L.LessThan
        return Q(lookup(self.expression(field), value))

    def op_gt(self, field, value, ctx):
        return self.lower(field, value, False)

    def op_gte(self, field, value, ctx):
        return self.lower(field, value, True)

    def op_lt(self, field, value, ctx):
        return self.upper(field, value, False)

    def op_lte(self, field, value, ctx):
        return self.upper(field, value, True)

    def op_between(self, field, value, ctx):
        lo, hi = value
        return self.lower(field, lo, True) & self.upper(field, hi, True)

    def sort_expression(self, field):
        return self.expression(field)


@register
class NumberKind(_OrderedKind):
    kind = FilterKind.NUMBER

    def scalar(self, field, op, raw, ctx):
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise ValueProblem("wrong_type", "Expected a number.")
        try:
            number = float(raw)
        except OverflowError:
            raise ValueProblem("out_of_range", "Number too large.")
        if not math.isfinite(number) or abs(number) >= 1e15:
            raise ValueProblem("out_of_range", "Numbers must be finite and smaller than 1e15 in magnitude.")
        return int(number) if number.is_integer() else number

    def expression(self, field):
        return custom_number(field.custom_key) if field.is_custom else F(field.column)

    def _eq(self, field, value) -> Q:
        if field.is_custom:
            return has_value(field.custom_key, value)  # jsonb compares numbers numerically
        return Q(**{field.column: value})

    def op_eq(self, field, value, ctx):
        return self._eq(field, value)

    def op_neq(self, field, value, ctx):
        return ~self._eq(field, value) | self.empty(field)


@register
class DateKind(_OrderedKind):
    """Calendar dates (custom date fields, stored `YYYY-MM-DD`)."""

    kind = FilterKind.DATE

    def scalar(self, field, op, raw, ctx):
        try:
            if isinstance(raw, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", raw):
                return parse_date(raw)
            return parse_datetime(raw, str(ctx.tz.key)).astimezone(ctx.tz).date()
        except FieldValueError as exc:
            raise ValueProblem(exc.code, "Expected an ISO date (YYYY-MM-DD) or datetime.")

    def expression(self, field):
        return custom_date(field.custom_key) if field.is_custom else F(field.column)

    def op_eq(self, field, value, ctx):
        if field.is_custom:
            return has_value(field.custom_key, value.isoformat())
        return Q(**{field.column: value})

    def op_within_last(self, field, value, ctx):
        return self.lower(field, span_cutoff(value, ctx).astimezone(ctx.tz).date(), True)

    def op_more_than_ago(self, field, value, ctx):
        return self.upper(field, span_cutoff(value, ctx).astimezone(ctx.tz).date(), False)


@register
class DatetimeKind(_OrderedKind):
    """Instants (created_at, updated_at, custom datetime stored as fixed-width UTC text).

    A date-only value is that whole day in the org's time zone.
    """

    kind = FilterKind.DATETIME

    def scalar(self, field, op, raw, ctx):
        try:
            if isinstance(raw, str) and re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", raw):
                return day_bounds(parse_date(raw), ctx.tz)
            return parse_datetime(raw, str(ctx.tz.key))
        except FieldValueError as exc:
            raise ValueProblem(exc.code, "Expected an ISO date (YYYY-MM-DD) or datetime.")

    def expression(self, field):
        return custom_datetime(field.custom_key) if field.is_custom else F(field.column)

    def lower(self, field, value, inclusive):
        if isinstance(value, Day):  # after the day ends / from its start
            return super().lower(field, value.start if inclusive else value.end, True)
        return super().lower(field, value, inclusive)

    def upper(self, field, value, inclusive):
        if isinstance(value, Day):  # before the day starts / until it ends
            return super().upper(field, value.end if inclusive else value.start, False)
        return super().upper(field, value, inclusive)

    def op_eq(self, field, value, ctx):
        if isinstance(value, Day):
            return self.lower(field, value, True) & self.upper(field, value, True)
        if field.is_custom:
            from customization.field_types import format_datetime

            return has_value(field.custom_key, format_datetime(value))
        return Q(**{field.column: value})

    def op_within_last(self, field, value, ctx):
        return super().lower(field, span_cutoff(value, ctx), True)

    def op_more_than_ago(self, field, value, ctx):
        return super().upper(field, span_cutoff(value, ctx), False)


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


def kind_of(field: SearchField) -> Kind:
    return KINDS[field.kind]
