"""Deep paging and counting for contact lists (`GET /contacts`, `POST /contacts/search`).

Keyset cursors: a page ends with the sort-key values of its last row; the next page asks
for rows strictly after them in the same order. Unlike OFFSET, the cost does not grow
with depth (OFFSET 100000 walks 100,000 rows; a cursor seeks the index).

Count modes: `exact` (count(*) of the filter), `estimate` (cheaper, from the org's own rows
only: exact up to ESTIMATE_EXACT_UP_TO, above that scaled up from a fixed sample of the table's
pages) and `none`. Nothing here reads the planner's statistics, which pool every org's values
(DESIGN §2: an estimate must not reveal another org's data).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property

from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.core import signing
from django.db import connection
from django.db.models import BigIntegerField, Exists, F, Lookup, OuterRef, Q, QuerySet, Value
from django.db.models.functions import Cast

from contacts.models import SAMPLE_PERCENT, ContactSample
from crm.errors import FieldError, InvalidInput
from crm.limits import COUNT_MODES, MAX_CURSOR_LENGTH


def _keys(order_by) -> list[tuple[str, bool]]:
    """`["-created_at", "name", "-id"]` → `[("created_at", True), ("name", False), ("id", True)]`."""
    keys = []
    for item in order_by:
        name = str(item)
        keys.append((name.lstrip("-"), name.startswith("-")))
    return keys


def _signature(order_by) -> str:
    return hashlib.sha256(json.dumps([str(i) for i in order_by]).encode()).hexdigest()[:12]


def _jsonable(value):
    if isinstance(value, dt.datetime | dt.date):
        return {"t": value.isoformat()}
    if isinstance(value, Decimal):
        return {"d": str(value)}
    return value


def _restore(value):
    if isinstance(value, dict) and "t" in value:
        text = value["t"]
        return dt.datetime.fromisoformat(text) if "T" in text else dt.date.fromisoformat(text)
    if isinstance(value, dict) and "d" in value:
        return Decimal(value["d"])
    return value


# Cursors are signed with a keyed HMAC of SECRET_KEY (Django's signing): a client can hand back
# only what the server wrote, never a cursor of its own making.
CURSOR_SALT = "contacts.paging.cursor"


def encode_cursor(row, order_by) -> str:
    values = [_jsonable(getattr(row, name)) for name, _ in _keys(order_by)]
    return signing.dumps({"s": _signature(order_by), "v": values}, salt=CURSOR_SALT)


def decode_cursor(token: str, order_by, attr: str = "cursor") -> list:
    invalid = InvalidInput([FieldError(attr, "invalid_cursor", "This cursor is malformed or belongs to another sort.")])
    if not isinstance(token, str) or len(token) > MAX_CURSOR_LENGTH:
        raise invalid
    try:
        data = signing.loads(token, salt=CURSOR_SALT)
        values = [_restore(v) for v in data["v"]]
        signature = data["s"]
    except (signing.BadSignature, ValueError, KeyError, TypeError):
        raise invalid
    if signature != _signature(order_by) or len(values) != len(_keys(order_by)):
        raise invalid
    return values


def rows_after(order_by, values) -> Q:
    """Rows strictly after `values` in `order_by`: k1 > v1 OR (k1 = v1 AND k2 > v2) OR …

    A null value only occurs inside a nulls-last group (the compiler sorts by a null flag
    first), where every row's value is null: there "equal" is IS NULL and "after" is none.
    The leading bound (k1 ≥ v1) is repeated as a plain condition so the index can seek to it.
    """
    keys = _keys(order_by)
    after = Q(pk__in=[])
    equal_so_far = Q()
    for (name, descending), value in zip(keys, values, strict=True):
        if value is None:
            step, same = Q(pk__in=[]), Q(**{f"{name}__isnull": True})
        else:
            step = Q(**{f"{name}__{'lt' if descending else 'gt'}": value})
            same = Q(**{name: value})
        after |= equal_so_far & step
        equal_so_far &= same
    (first, descending), first_value = keys[0], values[0]
    if first_value is not None:
        after &= Q(**{f"{first}__{'lte' if descending else 'gte'}": first_value})
    return after


def parse_count_mode(raw, attr: str = "count") -> str:
    if raw in (None, ""):
        return "exact"
    if raw not in COUNT_MODES:
        raise InvalidInput([FieldError(attr, "invalid_choice", f"Expected one of: {', '.join(COUNT_MODES)}.")])
    return raw


class AnyOf(Lookup):
    """`lhs = ANY(rhs)`, rhs an array (a custom lookup, as Django documents them)."""

    lookup_name = "any_of"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY({rhs})", (*lhs_params, *rhs_params)


def id_in(ids) -> AnyOf:
    """`id = ANY(CAST(<array> AS bigint[]))`: the ids as one array value, which psycopg formats in
    one go. As `pk__in` (or a Value with an ArrayField), Django prepares each id and, as `pk__in`,
    psycopg scans a query with a placeholder per id (~600 for an OR's page: ~2 ms of CPU)."""
    return AnyOf(F("pk"), Cast(Value(sorted(ids)), ArrayField(BigIntegerField())))


@dataclass
class Driver:
    """A tag or value condition AND-ed in a selection: `side`, its tag or value rows; `others`, the
    selection's contacts under its other conditions `rest` (those of `side`'s contacts that are
    matches). Built when first asked for: an OR's page reads it for one rare driver at most."""

    side: QuerySet
    scope: QuerySet
    rest: Q

    @cached_property
    def others(self) -> QuerySet:
        return self.scope.filter(self.rest)


@dataclass
class Selection:
    """What a list or search selects, in the two forms PostgreSQL plans well.

    `rows`: the contacts matching (conditions as EXISTS semi-joins, ORed across groups): what an
    `ORDER BY … LIMIT` walk of the sort index checks row by row. `ids`: the ids of the same
    contacts as one set-based query, for counts and small results: a UNION of one query per group
    when there are several, because an OR of semi-joins cannot drive an index, and each group can.
    """

    # Builds `rows`, when first asked for: an OR's page and count are read from its `arms`, and
    # filtering by the whole OR (its semi-joins resolved and cloned) was ~1 ms of its CPU for nothing.
    matching: Callable[[], QuerySet]
    ids: QuerySet  # values_list("pk", flat=True), unordered
    has_filter: bool = True
    common: bool = False  # known to hold many contacts (a common `q` term): no probe for a few
    # The tag or value rows of the selection's one condition, when it is one and the list is in its
    # default order: their index (org_id, tag or field, created_at, contact_id) holds them in that order.
    side: QuerySet | None = None
    # An OR of several groups: each group's own selection. A page of the OR is among the first rows
    # of each group's page, and each group finds those through its own indexes (an OR of semi-joins
    # can only be walked: 423 ms for three groups at 100k).
    arms: list[Selection] | None = None
    # With `arms`: the contacts the caller may see, which the arms were cut from. The rows an arm
    # finds are matches already, so the OR's page is read from here by their ids.
    scope: QuerySet | None = None
    # The exact count by a cheaper route than counting `ids`, when there is one (a `q` alone).
    counter: Callable[[], int] | None = None
    # The selection's AND-ed conditions that have tag or value rows (an arm's): each holds every
    # match, so one holding few rows bounds the selection through its own index.
    drivers: list[Driver] = field(default_factory=list)

    @cached_property
    def rows(self) -> QuerySet:
        return self.matching()

    @classmethod
    def of(cls, queryset, has_filter: bool = True, narrow: Q | None = None) -> Selection:
        """`narrow`: a condition the rows already meet, in a form that drives an index (`q_index` of a
        common term, which also makes the selection `common`)."""
        ids = queryset.filter(narrow) if narrow else queryset
        return cls(lambda: queryset, ids.order_by().values_list("pk", flat=True), has_filter, common=bool(narrow))

    def first_ids(self, cap: int) -> list[int]:
        """Up to `cap + 1` matching ids (so more than `cap` means there are more), in no order."""
        return list(self.ids[: cap + 1])

    def known_small(self, ordered, cap: int = 0):
        """`ordered` restricted to the first `cap + 1` matching ids, found within the same statement:
        `id = ANY(ARRAY(<ids> LIMIT cap + 1))`. The array is computed first, through the filter's
        own indexes; the page is then read by primary key and sorted. Only for selections known to
        hold at most `cap` contacts."""
        first = ArraySubquery(self.ids[: (cap or SMALL_RESULT) + 1])
        return ordered.filter(AnyOf(F("pk"), first))


# `count=estimate`: exact up to this many matches (the count stops there), then from the sample.
ESTIMATE_EXACT_UP_TO = 10_000


def estimate_count(selection: Selection) -> int:
    """The number of matches, from the org's own rows only.

    Exact when there are at most ESTIMATE_EXACT_UP_TO (the count stops looking there); above, the
    matches among the org's rows in `contacts_sample` (a fixed SAMPLE_PERCENT of the table's pages,
    contacts migration 0007) scaled up. Another org's rows can never change it: the sample's pages
    are chosen by their number, and only this org's rows on them are counted.
    """
    exact = selection.ids[: ESTIMATE_EXACT_UP_TO + 1].count()
    if exact <= ESTIMATE_EXACT_UP_TO:
        return exact
    sampled = ContactSample.objects.filter(Exists(selection.rows.order_by().filter(pk=OuterRef("id"))))
    return max(exact, round(sampled.count() * 100 / SAMPLE_PERCENT))


def count_rows(selection: Selection, mode: str) -> int | None:
    if mode == "none":
        return None
    if mode == "estimate":
        return estimate_count(selection)
    return exact_count(selection)


def exact_count(selection: Selection) -> int:
    """`count(*)` of the selection, with COUNT_WORK_MEM for this one query.

    A filter matching half a million rows is counted fastest through bitmaps and hashes of its own
    indexes, which at the default work_mem turn lossy or spill (a custom number range over 510k
    of 1M contacts: 640 ms at 4MB against 215 ms; `make bench`, "Exact counts").
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.COUNT_WORK_MEM])
        # If it fails, the transaction (and the setting) ends with it.
        count = selection.counter() if selection.counter else selection.ids.count()
        cursor.execute("SET LOCAL work_mem TO DEFAULT")
    return count


# A selection of at most this many contacts is paged from its ids: they are read through the
# filter's own indexes (no ORDER BY, so nothing tempts the planner to walk the sort index), and the
# page is sorted from those rows alone. A walk of the created_at index for `ORDER BY created_at
# DESC LIMIT 50` under a rare filter reads the whole org when the matches are old (a tag only on
# old contacts: 216 ms at 1M where the tag's index and a sort take 15 ms). Above it, matches are
# dense enough that a walk meets its page soon.
SMALL_RESULT = 5_000
# Without a count, the first FEW + 1 ids are read first (streaming, so it stops there): at most FEW
# are paged from those ids, more by a walk.
FEW = SMALL_RESULT // 10


# How a probe or a walk must run: streaming, row by row, so that it stops at its LIMIT. With a
# hash or merge join PostgreSQL first reads every row of one side (all the contacts of a common
# tag: 5 ms and more before the first row), and with a sort it collects every match before the
# first; parallel workers cost more to start than a page takes (20 ms against 3 ms).
STREAMING = {
    "enable_hashjoin": "off",
    "enable_mergejoin": "off",
    "enable_material": "off",  # else a misestimated semi-join rescans a materialized side for every row
    "max_parallel_workers_per_gather": "0",
}
WALK = {**STREAMING, "enable_sort": "off"}
# Counting a condition's first rows: its index in order, stopping at the LIMIT. A bitmap reads every
# entry of the condition first (199,080 for a common custom value: 40 ms where 501 take 3 ms).
PROBE = {**STREAMING, "enable_bitmapscan": "off"}


@dataclass
class Page:
    rows: list
    count: int | None  # per the count mode: exact, estimated, or None
    next_cursor: str | None  # None on the last page


def read_page(
    selection: Selection,
    order: Callable[[QuerySet], QuerySet],
    order_by: list,
    count_mode: str,
    limit: int,
    offset: int = 0,
    cursor: str | None = None,
) -> Page:
    """One page of a list or a search (`GET /contacts`, `POST /contacts/search`): the count in its
    mode, the rows after the cursor (or at the offset), and the cursor of the next page.

    `order` sorts rows of the selection (or of one of its arms) into `order_by`, whose last key is
    the id tiebreak; the cursor holds the last row's values of those keys.
    """
    after = decode_cursor(cursor, order_by) if cursor else None

    def ordered(rows):
        rows = order(rows)
        return rows.filter(rows_after(order_by, after)) if after is not None else rows

    count = count_rows(selection, count_mode)
    rows = fetch_page(selection, ordered, count, offset, limit, after)
    next_cursor = encode_cursor(rows[-1], order_by) if len(rows) == limit else None
    return Page(rows, count, next_cursor)


def fetch_page(
    selection: Selection,
    order: Callable[[QuerySet], QuerySet],
    count: int | None,
    offset: int,
    limit: int,
    after: list | None = None,
) -> list:
    """The page's rows, in one query when the count is known. `order` sorts rows of the selection
    or of one of its arms (and keeps those after the cursor, if any); `after`: the cursor's values.

    The plan is chosen by a fixed rule, from the selection's shape and size (never from how fast a
    trial ran, which would depend on the machine's load):
    - an OR of groups is paged from its groups' pages (`_union_page`), unless known to be small (below);
    - one tag or value condition in the default order is paged from its own rows (`_side_page`);
    - at most FEW matches, or at most SMALL_RESULT without a common `q` term, from their ids
      (`Selection.known_small`); more, by a walk of the sort index;
    - with no count, the first FEW + 1 ids decide: at most FEW are the page's source, more a walk.
    """
    page = slice(offset, offset + limit)
    known_small = count is not None and (count <= FEW or (count <= SMALL_RESULT and not selection.common))
    if selection.arms and selection.has_filter and not known_small:
        return _union_page(selection, order, page, after)
    ordered = order(selection.rows)
    if not selection.has_filter:
        return list(ordered[page])
    if selection.side is not None:
        return _side_page(selection.side, ordered, page, after)
    if count is None and not selection.common:
        with planner(STREAMING):
            ids = selection.first_ids(FEW)
        if len(ids) <= FEW:
            return list(ordered.filter(id_in(ids))[page])
    elif known_small:
        return list(selection.known_small(ordered)[page])
    with planner(WALK):
        return list(ordered[page])


def _union_page(selection: Selection, order: Callable[[QuerySet], QuerySet], page: slice, after) -> list:
    """The page of an OR of groups: the rows up to the page's end of each group hold the OR's page
    (the first N of a union are among the first N of its parts, in one order), which is then sorted
    from those alone. Each group finds its rows in one of three ways:
    - one tag or value condition in list order: from its own rows (`_side_page`);
    - a tag or value condition holding at most FEW rows (its *driver*; every driver's first FEW + 1
      rows are read through its index, in one statement): its contacts that meet the group's other
      conditions, sorted, instead of a walk that meets them far apart (447 of 1M: 196 ms walked);
    - else walking the sort index under the group's conditions, rather than probing for its first
      ids: one group without an index to drive it made the probe read 500 of its ids one by one
      (526 ms at 1M for the benchmark's OR of three groups, where its walk takes ~12 ms).
    The walks go in one statement, the rare groups in another. Every candidate meets its group (and
    `q`, and the cursor), so the page reads them by id from `selection.scope` and sorts them, without
    the whole OR again (compiling it and checking it on every candidate cost ~3 ms of the 30)."""
    first = slice(0, page.stop)
    arms = [arm for arm in selection.arms if arm.side is None]
    candidates: set[int] = set()
    with planner({**WALK, **PROBE}):  # one setting for both: a probe neither sorts nor joins
        rare = _rare_drivers(selection.scope, arms, FEW)
        walked = [arm for arm, found in zip(arms, rare, strict=True) if not found]
        walks = [order(arm.rows).values_list("pk", flat=True)[first] for arm in walked]
        candidates.update(_all_of(walks))
    # Sorted, so outside the walks' setting (it forbids sorting).
    bounded = [order(driver.others).filter(id_in(ids)) for driver, ids in filter(None, rare)]
    candidates.update(_all_of([rows.values_list("pk", flat=True)[first] for rows in bounded]))
    for arm in selection.arms:
        if arm.side is not None:
            candidates.update(row.pk for row in _side_page(arm.side, order(arm.rows), first, after))
    return list(order(selection.scope).filter(id_in(candidates))[page])


def _rare_drivers(scope: QuerySet, arms: list[Selection], cap: int) -> list[tuple[Driver, set[int]] | None]:
    """Per arm, its first driver of at most `cap` rows with the contact ids of those rows, or None.
    One statement reads up to `cap + 1` rows of every driver, each through its own index (under
    `planner(PROBE)`), each driver's as one array: a row of arrays, carried by any one contact of
    `scope` (with none, no driver has rows). As rows (~2,000) they took ~1 ms to read and sort out."""
    drivers = [(number, driver) for number, arm in enumerate(arms) for driver in arm.drivers]
    firsts = {
        f"driver_{n}": ArraySubquery(driver.side.order_by().values("contact_id")[: cap + 1])
        for n, (_, driver) in enumerate(drivers)
    }
    found = list(scope.order_by().annotate(**firsts).values_list(*firsts)[:1]) if firsts else []
    rows = found[0] if found else [[] for _ in drivers]
    rare: list[tuple[Driver, set[int]] | None] = [None] * len(arms)
    for (number, driver), ids in zip(drivers, rows, strict=True):
        if rare[number] is None and len(ids) <= cap:  # rows, not contacts: `contains_any` has one per tag
            rare[number] = (driver, set(ids))
    return rare


def _all_of(parts: list[QuerySet]) -> list:
    """The rows of every part (each sliced, sorted or not), in one statement: UNION ALL."""
    if not parts:
        return []
    return list(parts[0].union(*parts[1:], all=True)) if len(parts) > 1 else list(parts[0])


def _side_page(side: QuerySet, ordered, page: slice, after: list | None) -> list:
    """The page of a one-condition list, in list order, read from the condition's tag or value rows:
    their index holds them in (created_at, contact) order, so a common tag finds its 50 in 50 index
    entries and a rare one, however old, in as many as it has; no contact is read but the page's."""
    rows = side.order_by("-created_at", "-contact_id").values_list("contact_id", flat=True).distinct()
    if after is not None:
        rows = rows.filter(rows_after(["-created_at", "-contact_id"], after))
    with planner(STREAMING):
        ids = list(rows[page])
    by_id = {contact.pk: contact for contact in ordered.filter(id_in(ids))}
    return [by_id[contact_id] for contact_id in ids if contact_id in by_id]


@contextlib.contextmanager
def planner(settings: dict[str, str]):
    """The block's queries with these settings (transaction-local), one statement to set them and
    one to put back what was in force."""
    names = list(settings)
    pairs = ", ".join("current_setting(%s), set_config(%s, %s, true)" for _ in names)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {pairs}", [v for name in names for v in (name, name, settings[name])])
        previous = cursor.fetchone()[0::2]
    yield
    with connection.cursor() as cursor:
        restore = ", ".join("set_config(%s, %s, true)" for _ in names)
        cursor.execute(f"SELECT {restore}", [v for pair in zip(names, previous, strict=True) for v in pair])
