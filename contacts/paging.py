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

import base64
import binascii
import datetime as dt
import hashlib
import json
from decimal import Decimal

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, OuterRef, Q

from contacts.models import SAMPLE_PERCENT, ContactSample
from crm.api.exceptions import FieldError, InvalidInput

COUNT_MODES = ("exact", "estimate", "none")


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


def encode_cursor(row, order_by) -> str:
    values = [_jsonable(getattr(row, name)) for name, _ in _keys(order_by)]
    raw = json.dumps({"s": _signature(order_by), "v": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, order_by, attr: str = "cursor") -> list:
    invalid = InvalidInput([FieldError(attr, "invalid_cursor", "This cursor is malformed or belongs to another sort.")])
    if not isinstance(token, str) or len(token) > 2000:
        raise invalid
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values = [_restore(v) for v in data["v"]]
        signature = data["s"]
    except (ValueError, KeyError, TypeError, binascii.Error):
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


# `count=estimate`: exact up to this many matches (the count stops there), then from the sample.
ESTIMATE_EXACT_UP_TO = 10_000


def estimate_count(queryset) -> int:
    """The number of matches, from the org's own rows only.

    Exact when there are at most ESTIMATE_EXACT_UP_TO (the count stops looking there); above, the
    matches among the org's rows in `contacts_sample` (a fixed SAMPLE_PERCENT of the table's pages,
    contacts migration 0007) scaled up. Another org's rows can never change it: the sample's pages
    are chosen by their number, and only this org's rows on them are counted.
    """
    exact = capped_count(queryset, ESTIMATE_EXACT_UP_TO)
    if exact <= ESTIMATE_EXACT_UP_TO:
        return exact
    matching = ContactSample.objects.filter(Exists(queryset.order_by().filter(pk=OuterRef("id"))))
    return max(exact, round(matching.count() * 100 / SAMPLE_PERCENT))


def capped_count(queryset, cap: int) -> int:
    """The number of matches, counted up to `cap + 1` (so "more than cap" is `cap + 1`)."""
    return queryset.order_by()[: cap + 1].count()


def count_rows(queryset, mode: str) -> int | None:
    if mode == "none":
        return None
    if mode == "estimate":
        return estimate_count(queryset)
    return exact_count(queryset)


def exact_count(queryset) -> int:
    """`count(*)` of the filter, with COUNT_WORK_MEM for this one query.

    A filter matching half a million rows is counted fastest by a bitmap scan of its own index
    (e.g. a custom number range), but at the default work_mem the bitmap turns lossy and every
    row's value is recomputed, so PostgreSQL walks the org instead: 640 ms at 1M contacts where
    an exact bitmap takes 215 ms (`make bench`, "Exact counts").
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('work_mem', %s, true)", [settings.COUNT_WORK_MEM])
        count = queryset.order_by().count()  # if it fails, the transaction (and the setting) ends with it
        cursor.execute("SET LOCAL work_mem TO DEFAULT")
    return count


# A filter that matches at most this many rows is paged by fetching them through the filter's own
# indexes and sorting in memory, never by walking the sort index.
SMALL_RESULT = 5_000
# Between SMALL_RESULT / WALK_FIRST_FACTOR and SMALL_RESULT the bitmap plan is usually right but
# not always: a common term's own index scans can be the slow part (a `q` trigram found in
# 160,000 contacts, ANDed with one member's assignment: 173 ms, where walking that member's
# index took 1.1 ms). There the walk gets a short try first, then the bitmap plan.
WALK_FIRST_FACTOR = 10
SHORT_WALK_BUDGET_MS = 8
QUERY_CANCELED = "57014"


def fetch_page(ordered, filtered, count: int | None, has_filter: bool, offset: int, limit: int) -> list:
    """The page's rows, with the plan chosen for the filter's selectivity.

    PostgreSQL picks, for `ORDER BY created_at DESC LIMIT 50` under a rare filter, a walk down
    the created_at index hoping to meet 50 matches early; when the matches are all old (a tag
    only on old contacts) it reads most of the org (216 ms measured) where a scan of the tag
    index and a sort take 15 ms. The count (exact, or counted up to SMALL_RESULT when none was
    asked for) tells which case this is; for small results index-order scans are switched off
    for this one query.
    """
    page = ordered[offset : offset + limit]
    if not has_filter:
        return list(page)
    small = count if count is not None and count <= ESTIMATE_EXACT_UP_TO else capped_count(filtered, SMALL_RESULT)
    if small <= SMALL_RESULT // WALK_FIRST_FACTOR:
        return _without_index_walk(page)
    if small > SMALL_RESULT:
        return list(page)
    rows = _within_budget(page, SHORT_WALK_BUDGET_MS)
    return rows if rows is not None else _without_index_walk(page)


def _without_index_walk(page) -> list:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        try:
            return list(page)
        finally:
            cursor.execute("SET LOCAL enable_indexscan = on")


def _within_budget(page, budget_ms: int) -> list | None:
    """The rows, or None if the query needs more than `budget_ms` (it is cancelled, and the
    savepoint around it leaves the transaction as it was)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
                           [f"{budget_ms}ms"])  # fmt: skip
            previous = cursor.fetchone()[0]
            rows = list(page)
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
            return rows
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != QUERY_CANCELED:
            raise
        return None
