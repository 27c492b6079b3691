"""Timing one request shape end to end over HTTP, and the SQL the service ran for it, directly."""

from __future__ import annotations

import json
import math
import statistics
import time
from urllib.parse import urlencode

import psycopg

from bench.shapes import LIST_PATH, SEARCH_PATH, Shape


def p50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


class Capabilities:
    """What the running API supports, probed once (the harness is written against DESIGN §4)."""

    def __init__(self, client):
        status, body, _ = client.call("POST", SEARCH_PATH, {"query": {"groups": []}, "limit": 1, "count": "none"})
        self.search = status == 200
        self.search_count_modes = self.search and isinstance(body, dict) and body.get("count") is None
        if not self.search:
            status, body, _ = client.call("POST", SEARCH_PATH, {"query": {"groups": []}, "limit": 1})
            self.search_status = status
        status, body, _ = client.call("GET", LIST_PATH, params={"limit": 1, "count": "none"})
        self.get_count_modes = status == 200 and isinstance(body, dict) and body.get("count") is None
        self.cursor_on = None  # "get" | "search"
        if isinstance(body, dict) and body.get("next_cursor"):
            self.cursor_on = "get"
        elif self.search:
            _, body, _ = client.call("POST", SEARCH_PATH, {"query": {"groups": []}, "limit": 1})
            if isinstance(body, dict) and body.get("next_cursor"):
                self.cursor_on = "search"
        status, _, _ = client.call("POST", "/api/v1/contacts/import", {"contacts": [], "options": {"dry_run": True}})
        self.import_status = status
        self.import_ = status not in (404, 405)

    def describe(self) -> dict:
        return {
            "POST /contacts/search": self.search,
            "search count modes": self.search_count_modes,
            "GET /contacts count modes": self.get_count_modes,
            "keyset cursor on": self.cursor_on,
            "POST /contacts/import": self.import_,
        }


class Request:
    def __init__(self, method: str, path: str, body: dict | None = None, params: dict | None = None):
        self.method, self.path, self.body, self.params = method, path, body, params

    @property
    def url(self) -> str:
        return f"{self.path}?{urlencode(self.params, doseq=True)}" if self.params else self.path


def request_for(shape: Shape, caps: Capabilities, count: str, limit: int = 50) -> Request | None:
    if shape.endpoint == "search":
        if not caps.search:
            return None
        body = {**shape.search, "limit": limit}
        if caps.search_count_modes:
            body["count"] = count
        return Request("POST", SEARCH_PATH, body)
    if shape.endpoint == "get":
        params = {**(shape.get or {}), "limit": str(limit)}
        if caps.get_count_modes or count != "exact":
            params["count"] = count
        return Request("GET", LIST_PATH, params=params)
    return None


def time_api(client, request: Request, warmup: int, runs: int, budget_s: float) -> dict:
    statuses, times, last = set(), [], None
    warm_started = time.monotonic()
    for _ in range(warmup):
        status, last, _ = client.call(request.method, request.path, request.body, request.params)
        statuses.add(status)
        if time.monotonic() - warm_started > budget_s / 4:  # a slow shape: one or two warm-ups are enough
            break
    started = time.monotonic()
    for _ in range(runs):
        status, last, elapsed = client.call(request.method, request.path, request.body, request.params)
        statuses.add(status)
        times.append(elapsed)
        if time.monotonic() - started > budget_s and len(times) >= 5:
            break
    ok = statuses == {200}
    result = {"p50_ms": p50(times) * 1000, "p95_ms": p95(times) * 1000, "n": len(times), "statuses": sorted(statuses)}
    if isinstance(last, dict):
        result["rows"] = len(last.get("results") or [])
        result["count"] = last.get("count")
        if not ok:
            result["error"] = json.dumps(last)[:300]
    return result


def capture_sql(request: Request, token: str, org_id: int) -> tuple[int, list[str]]:
    """Run the request once in-process (Django test client) and return the SQL it ran."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    headers = {"Authorization": f"Bearer {token}", "X-Org-Id": str(org_id)}
    with CaptureQueriesContext(connection) as ctx:
        if request.method == "GET":
            response = client.get(request.url, headers=headers)
        else:
            response = client.generic(
                request.method, request.url, json.dumps(request.body), content_type="application/json", headers=headers
            )
    return response.status_code, [q["sql"] for q in ctx.captured_queries]


def is_read(sql: str) -> bool:
    """Reads, plus the `SET LOCAL` switches the service issues around them (planner switches and
    work_mem, contacts.paging)."""
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    return head in ("SELECT", "WITH", "EXPLAIN") or sql.lstrip().upper().startswith("SET LOCAL ")


def is_savepoint(sql: str) -> bool:
    return sql.lstrip().upper().startswith(("SAVEPOINT", "ROLLBACK TO SAVEPOINT", "RELEASE SAVEPOINT"))


def run_statement(cur, queries: list[str], i: int) -> list | None:
    """Run queries[i]; its rows, or None if it failed and the service rolled back to its savepoint
    right after (a walk tried within a `statement_timeout` and cancelled at its budget,
    contacts.paging). Any other error is raised (time_sql records it)."""
    try:
        cur.execute(queries[i])
    except psycopg.Error:
        if i + 1 < len(queries) and queries[i + 1].lstrip().upper().startswith("ROLLBACK TO SAVEPOINT"):
            return None
        raise
    return cur.fetchall() if cur.description else []


def sql_error(exc: psycopg.Error, queries: list[str] | None = None, at: int | None = None) -> dict:
    """What a replay error is, for the results (the run goes on)."""
    error = {"sqlstate": exc.sqlstate, "error": f"{type(exc).__name__}: {str(exc).strip()[:300]}"}
    if queries is not None and at is not None:
        error["statement"] = queries[at][:500]
    return error


class Replay:
    """One request's statements replayed on `conn`: per statement its times and row count, the
    walks the service cancelled at their budget, the total of each timed pass, the error that
    ended the replay (if any)."""

    def __init__(self, conn, queries: list[str]):
        self.conn, self.queries = conn, queries
        self.per_query: list[list[float]] = [[] for _ in queries]
        self.rows = [0] * len(queries)
        self.cancelled: set[int] = set()
        self.totals: list[float] = []
        self.failed: dict = {}

    @property
    def reads(self) -> int:
        return sum(1 for q in self.queries if is_read(q))

    def run(self, cur, runs: int, budget_s: float) -> None:
        """One warm-up, then up to `runs` timed passes (at least 3 past the budget); a failing
        statement ends it, recorded in `failed`."""
        try:
            self.one_pass(cur, timed=False)
            started = time.monotonic()
            for _ in range(runs):
                self.one_pass(cur, timed=True)
                if time.monotonic() - started > budget_s and len(self.totals) >= 3:
                    break
        except psycopg.Error:
            pass  # recorded in `failed` by one_pass

    def one_pass(self, cur, timed: bool) -> None:
        """Every statement once, in one transaction like the service's."""
        total = 0.0
        with self.conn.transaction():
            for i in range(len(self.queries)):
                t0 = time.perf_counter()
                try:
                    fetched = run_statement(cur, self.queries, i)
                except psycopg.Error as exc:
                    self.failed.update(sql_error(exc, self.queries, i))
                    raise
                elapsed = time.perf_counter() - t0
                if fetched is None:
                    self.cancelled.add(i)
                self.rows[i] = len(fetched or [])
                if timed:
                    self.per_query[i].append(elapsed)
                total += elapsed
        if timed:
            self.totals.append(total)

    def timings(self) -> dict:
        """The request's SQL time (p50 of the pass totals) and each statement's; needs a timed pass."""
        result = {
            "sql_p50_ms": p50(self.totals) * 1000,
            "queries": self.reads,
            "per_query_ms": [round(p50(t) * 1000, 3) if t else None for t in self.per_query],
            "sql_runs": len(self.totals),
        }
        if self.failed:
            result["sql_error"] = self.failed
        return result


def time_sql(conn, queries: list[str], runs: int, budget_s: float) -> dict:
    """The request's read queries run directly `runs` times (after one warm-up), each run in one
    transaction like the service's (so its `set_config(...)` org context and row-level security
    apply): p50 of the per-request total, and the slowest query with its plan and row count.

    Savepoints are replayed too, so a walk the service cancelled at its budget is cancelled here
    as well and its time counts; it is not the query shown (the plan that answered is). A
    statement that fails here although it did not in the service (a walk the service finished
    within its `statement_timeout` budget and the replay did not, SQLSTATE 57014, say) ends the
    replay: the error is returned as `sql_error`, with whatever was timed before it, and the run
    goes on."""
    queries = [q for q in queries if is_read(q) or is_savepoint(q)]
    if not any(is_read(q) for q in queries):
        return {}
    replay = Replay(conn, queries)
    with conn.cursor() as cur:
        replay.run(cur, runs, budget_s)
        if not replay.totals:
            return {"sql_error": replay.failed, "queries": replay.reads}
        result = replay.timings()
        try:
            result.update(_slowest(conn, cur, queries, replay.per_query, replay.rows, replay.cancelled, runs))
        except psycopg.Error as exc:
            result.setdefault("sql_error", sql_error(exc))
    return result


def _slowest(conn, cur, queries, per_query, rows, cancelled, runs) -> dict:
    """The query worth a plan (the slowest on the contacts table: the page or the count): its plan
    and time under the request's row-level security, and without it."""
    answered = [i for i, q in enumerate(queries) if i not in cancelled and not is_savepoint(q) and per_query[i]]
    candidates = [
        i
        for i in answered
        if "contacts_contact" in queries[i] and not queries[i].lstrip().upper().startswith(("EXPLAIN", "SET"))
    ] or [i for i in answered if not queries[i].lstrip().upper().startswith("SET")]
    if not candidates:
        return {}
    slowest = max(candidates, key=lambda i: p50(per_query[i]))
    main_sql = queries[slowest]
    with conn.transaction(force_rollback=True):
        for i in range(slowest):
            run_statement(cur, queries, i)
        cur.execute("EXPLAIN (FORMAT JSON) " + main_sql)
        plan = cur.fetchone()[0][0]["Plan"]
        try:
            with conn.transaction():  # a savepoint: the walk's own statement_timeout may cancel it
                cur.execute("EXPLAIN (ANALYZE, BUFFERS) " + main_sql)
                plan_text = "\n".join(row[0] for row in cur.fetchall())
        except psycopg.Error as exc:
            plan_text = f"(EXPLAIN ANALYZE failed: {sql_error(exc)['error']})"
    # The same query in the same transaction state (org setting, planner switches) but as the loader,
    # a superuser, whom row-level security does not restrict: whether and how much the policy costs.
    with conn.transaction(force_rollback=True):
        _without_policy(cur, queries, slowest, cancelled)
        cur.execute("EXPLAIN (FORMAT JSON) " + main_sql)
        plan_no_rls = cur.fetchone()[0][0]["Plan"]
    no_rls = []
    for _ in range(max(3, min(runs, len(per_query[slowest])))):
        with conn.transaction(force_rollback=True):
            _without_policy(cur, queries, slowest, cancelled)
            t0 = time.perf_counter()
            cur.execute(main_sql)
            cur.fetchall()
            no_rls.append(time.perf_counter() - t0)
    return {
        "main_no_rls_p50_ms": p50(no_rls) * 1000,
        "main_p50_ms": p50(per_query[slowest]) * 1000,
        "main_rows": rows[slowest],
        "plan": plan_summary(plan),
        "plan_without_rls": plan_summary(plan_no_rls),
        "plan_analyzed": plan_text,
        "main_sql": main_sql,
    }


def _without_policy(cur, queries: list[str], upto: int, cancelled: set[int]) -> None:
    """The request's statements before queries[upto], then back to the session's own role (the
    loader): the org setting and planner switches stay, row-level security no longer applies.
    A walk the service cancelled is skipped, with its savepoint and time budget."""
    for i, sql in enumerate(queries[:upto]):
        if i not in cancelled and not is_savepoint(sql) and "statement_timeout" not in sql:
            cur.execute(sql)
            if cur.description:
                cur.fetchall()
    cur.execute("SELECT set_config('role', 'none', true)")


def plan_summary(plan: dict, depth: int = 3) -> str:
    """The first plan nodes down the first-child chain, e.g. `Limit > Index Scan (contact_org_created)`."""
    parts = []
    node = plan
    while node and len(parts) < depth:
        label = node["Node Type"]
        if node.get("Index Name"):
            label += f" ({node['Index Name']})"
        parts.append(label)
        children = node.get("Plans") or []
        node = children[0] if children else None
    return " > ".join(parts)


def time_plain_count(conn, org_id: int, condition: str, runs: int, budget_s: float) -> dict:
    """PostgreSQL's own count(*) of the filter, as the loader (no row-level security): the reference."""
    sql = f"SELECT count(*) FROM contacts_contact WHERE org_id = {int(org_id)} AND ({condition})"
    times = []
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
            count = cur.fetchone()[0]
            started = time.monotonic()
            for _ in range(runs):
                t0 = time.perf_counter()
                cur.execute(sql)
                cur.fetchone()
                times.append(time.perf_counter() - t0)
                if time.monotonic() - started > budget_s and len(times) >= 3:
                    break
        except psycopg.Error as exc:
            return {"p50_ms": p50(times) * 1000 if times else None, "count": None, "sql": sql,
                    "sql_error": sql_error(exc)}  # fmt: skip
    return {"p50_ms": p50(times) * 1000, "count": count, "sql": sql}
