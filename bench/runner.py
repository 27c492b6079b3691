"""`python -m bench run`: seed, serve, measure, report (see docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from bench import asyncimport, duplicates, feed, importbench, measure, report, seed, smartlist, tenants, wrkbench
from bench import db as benchdb
from bench.server import Client, Server
from bench.shapes import DEEP_ROWS, LIST_PATH, SEARCH_PATH, build_shapes

TARGET_P50_MS = 25.0
SEED_VERSION = 2  # 2: tags and custom values as rows (contacts migration 0006)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare(args, results: dict) -> tuple[benchdb.BenchDatabase, seed.Cast]:
    database = benchdb.locate_server()
    log(f"database: {'embedded PostgreSQL in .pgdata-bench/' if database.embedded else 'DATABASE_URL server'}, "
        f"{benchdb.BENCH_DB}")  # fmt: skip
    wanted = {"version": SEED_VERSION, "contacts": args.contacts, "other_orgs": args.other_orgs,
              "other_contacts": args.other_contacts}  # fmt: skip
    meta = benchdb.read_meta(database) if args.reuse and benchdb.database_exists(database) else None
    if meta and meta.get("params") == wanted:
        log("reusing the seeded database (--reuse)")
        benchdb.migrate(database)
        benchdb.setup_django(database)
        cast = seed.reissue_tokens(meta["cast"])
        results["seed"] = {**meta.get("timings", {}), "reused": True}
        # A previous run's many-tenants orgs and timed writes: the "without" figures must not have them.
        cleaned = {**tenants.remove(database), "removed_writes": tenants.remove_writes(database, cast.main_org),
                   "removed_async_orgs": asyncimport.remove(database)["removed_orgs"]}  # fmt: skip
        if cleaned["removed_orgs"] or cleaned["removed_writes"] or cleaned["removed_async_orgs"]:
            log(f"removed what a previous run left: {cleaned}")
        results["seed"]["cleaned"] = cleaned
        return database, cast
    started = time.monotonic()
    benchdb.recreate(database)
    log("migrating crm_bench")
    benchdb.migrate(database)
    benchdb.setup_django(database)
    cast = seed.create_cast(args.other_orgs)
    log(f"seeding {args.contacts:,} + {args.other_contacts:,} contacts with COPY")
    timings = seed.seed_contacts(database, cast, args.contacts, args.other_contacts)
    cast.sample = seed.pick_samples(database, cast)
    timings["total_s"] = time.monotonic() - started
    log(f"seeded in {timings['total_s']:.0f} s (COPY {timings['copy_rows_per_s']:,.0f} contacts/s with "
        f"{timings['tag_rows']:,} tag rows and {timings['value_rows']:,} value rows, indexes "
        f"{timings['indexes_s']:.0f} s, VACUUM ANALYZE {timings['vacuum_analyze_s']:.0f} s)")  # fmt: skip
    cast_json = cast.to_json()
    for key in ("owner", "assigned", "import_owner", "other_owner"):
        cast_json[key]["token"] = ""
    benchdb.write_meta(database, {"params": wanted, "cast": cast_json, "timings": timings})
    results["seed"] = timings
    return database, cast


def deep_request(client, caps, depth: int):
    """Walk the keyset cursor `depth` rows deep (pages of 200); the request for the next page of 50."""
    if caps.cursor_on is None:
        return None, "the API returns no next_cursor (keyset paging not available)"
    cursor, walked = None, 0
    while walked < depth:
        step = min(200, depth - walked)
        if caps.cursor_on == "get":
            params = {"limit": step, "count": "none", **({"cursor": cursor} if cursor else {})}
            status, body, _ = client.call("GET", LIST_PATH, params=params)
        else:
            body = {"query": {"groups": []}, "limit": step, "count": "none", **({"cursor": cursor} if cursor else {})}
            status, body, _ = client.call("POST", SEARCH_PATH, body)
        if status != 200 or not isinstance(body, dict) or not body.get("next_cursor"):
            return None, f"cursor walk stopped at row {walked} (status {status})"
        cursor = body["next_cursor"]
        walked += step
    if caps.cursor_on == "get":
        return measure.Request("GET", LIST_PATH, params={"limit": "50", "count": "none", "cursor": cursor}), None
    return measure.Request("POST", SEARCH_PATH, {"query": {"groups": []}, "limit": 50, "count": "none",
                                                  "cursor": cursor}), None  # fmt: skip


def measure_shape(args, conn, shape, client, actor, sql_runs: int) -> dict:
    """One shape's API timing, and the SQL the service ran for it replayed directly."""
    request = shape.request
    row = {"shape": shape.name, "actor": shape.actor, "targeted": shape.targeted,
           "endpoint": f"{request.method} {request.path.removeprefix('/api/v1')}",
           "request": {"body": request.body, "params": request.params}}  # fmt: skip
    row.update(measure.time_api(client, request, args.warmup, args.requests, args.api_budget))
    status, queries = measure.capture_sql(request, actor.token, actor.org_id)
    if status == 200:
        row.update(measure.time_sql(conn, queries, sql_runs, args.sql_budget))
    if row.get("sql_p50_ms"):
        row["ratio"] = row["p50_ms"] / row["sql_p50_ms"]
    row["met"] = row["statuses"] == [200] and row["p50_ms"] <= TARGET_P50_MS
    error = f" SQL replay error: {row['sql_error'].get('error')}" if row.get("sql_error") else ""
    log(f"{shape.name}: API p50 {row['p50_ms']:.1f} ms p95 {row['p95_ms']:.1f} ms, "
        f"SQL p50 {row.get('sql_p50_ms') or float('nan'):.1f} ms, rows {row.get('main_rows')}, "
        f"{row.get('plan', '')} {'' if row['statuses'] == [200] else row['statuses']}{error}")  # fmt: skip
    return row


def run_shapes(args, database, cast, client_for, caps, results) -> list:
    shapes = build_shapes(cast.sample, seed.lookup_ids(database, cast.main_org))
    depth = min(DEEP_ROWS, cast.sample["main_contacts"] // 2)
    rows = []
    with database.connect() as conn:
        for shape in shapes:
            actor = cast.owner if shape.actor == "owner" else cast.assigned
            client = client_for(shape.actor)
            if shape.get and "offset" in shape.get:
                shape.get = {**shape.get, "offset": str(depth)}
            if shape.endpoint == "deep":
                shape.request, problem = deep_request(client, caps, depth)
            else:
                shape.request = measure.request_for(shape, caps, args.count_mode)
                problem = None if shape.request else "POST /contacts/search is not available"
            if shape.request is None:
                rows.append({"shape": shape.name, "actor": shape.actor, "targeted": shape.targeted, "endpoint": "-",
                             "error": problem})  # fmt: skip
                log(f"{shape.name}: NOT AVAILABLE ({problem})")
                continue
            row = measure_shape(args, conn, shape, client, actor, args.sql_runs)
            if shape.endpoint == "deep":
                row["depth"] = depth
            rows.append(row)
    results["shapes"] = rows
    return shapes


def tenant_phase(args, database, cast, client_for, shapes, run_tag: str) -> dict:
    """Every targeted shape (API p50, its SQL replayed a few times) and the single-contact writes,
    after the tables the history's and the feed's triggers write are vacuumed (`tenants.settle`)."""
    rows, sql_runs = [], max(3, args.sql_runs // 3)
    tenants.settle(database)
    with database.connect() as conn:
        for shape in shapes:
            if shape.targeted and shape.request is not None:
                actor = cast.owner if shape.actor == "owner" else cast.assigned
                rows.append(measure_shape(args, conn, shape, client_for(shape.actor), actor, sql_runs))
    writes = tenants.time_writes(client_for("owner"), run_tag, args.write_requests, args.warmup)
    log(f"writes: create p50 {writes['create']['p50_ms']} ms, PATCH p50 {writes['patch']['p50_ms']} ms "
        f"{writes['errors'] or ''}")  # fmt: skip
    return {"shapes": rows, "writes": writes}


def run_many_tenants(args, database, cast, client_for, shapes, results) -> None:
    """DESIGN §5 "Many tenants": the shapes and single-contact writes of the main org, before and
    after args.many_tenants more orgs with 20 custom fields each join the database."""
    section: dict = {"orgs": args.many_tenants, "contacts_per_org": args.tenant_contacts,
                     "fields_per_org": len(tenants.FIELDS), "kinds": list(tenants.KINDS)}  # fmt: skip
    run_tag = time.strftime("%Y%m%d%H%M%S")
    try:
        log(f"many tenants: before ({len(tenants.existing(database))} tenant orgs present)")
        section["before"] = tenant_phase(args, database, cast, client_for, shapes, run_tag + "b")
        log(f"many tenants: adding {args.many_tenants:,} orgs x {len(tenants.FIELDS)} fields, "
            f"{args.tenant_contacts} contacts each with every value (COPY)")  # fmt: skip
        section["seed"] = tenants.add(database, args.many_tenants, args.tenant_contacts)
        log(f"many tenants: seeded {section['seed']}")
        with database.connect() as conn:
            section["table_rows"] = dict(conn.execute(
                "SELECT relname, reltuples::bigint FROM pg_class WHERE relname = ANY(%s)",
                [["orgs_organization", "customization_customfield", "contacts_contact", "contacts_fieldvalue"]],
            ).fetchall())  # fmt: skip
        log("many tenants: after")
        section["after"] = tenant_phase(args, database, cast, client_for, shapes, run_tag + "a")
    except Exception as exc:  # the report still gets written, with what was measured
        section["error"] = f"{type(exc).__name__}: {exc}"
        log(f"many tenants: stopped by {section['error']}")
    finally:
        section["removed_writes"] = tenants.remove_writes(database, cast.main_org)
        results["many_tenants"] = section


def run_counts(args, database, cast, client, caps, shapes, results) -> None:
    rows = []
    by_name = {r["shape"]: r for r in results["shapes"]}
    with database.connect() as conn:
        for shape in shapes:
            if not shape.count_sql:
                continue
            row = {"shape": shape.name}
            plain = measure.time_plain_count(conn, cast.main_org, shape.count_sql, args.sql_runs, args.sql_budget)
            row["plain_p50_ms"], row["plain_count"], row["plain_sql"] = plain["p50_ms"], plain["count"], plain["sql"]
            if plain.get("sql_error"):
                row["plain_error"] = plain["sql_error"]
            exact = measure.request_for(shape, caps, "exact")
            if exact is None:
                row["error"] = "endpoint not available"
                rows.append(row)
                continue
            timing = measure.time_api(client, exact, 2, args.count_requests, args.api_budget)
            row["api_exact_p50_ms"], row["api_count"] = timing["p50_ms"], timing.get("count")
            row["count_matches"] = timing.get("count") == plain["count"]
            none_p50 = by_name.get(shape.name, {}).get("p50_ms")
            supported = caps.search_count_modes if shape.endpoint == "search" else caps.get_count_modes
            if supported and none_p50 is not None:
                row["api_none_p50_ms"] = none_p50
                row["api_count_cost_ms"] = max(timing["p50_ms"] - none_p50, 0.0)
                estimate = measure.request_for(shape, caps, "estimate")
                est = measure.time_api(client, estimate, 2, args.count_requests, args.api_budget)
                row["api_estimate_p50_ms"], row["api_estimate"] = est["p50_ms"], est.get("count")
            status, queries = measure.capture_sql(exact, cast.owner.token, cast.owner.org_id)
            reads = [q for q in queries if measure.is_read(q)]
            at = next((i for i, q in enumerate(reads) if "COUNT(" in q.upper() and "contacts_contact" in q), None)
            if at is not None:  # the count query, after the request's org-context statements
                timed = measure.time_sql(conn, reads[: at + 1], args.sql_runs, args.sql_budget)
                row["service_count_sql_p50_ms"] = timed.get("main_p50_ms")
                row["service_count_plan"] = timed.get("plan")
                row["service_count_sql"] = reads[at]
                if timed.get("sql_error"):
                    row["service_count_sql_error"] = timed["sql_error"]
            # The API's difference when it is one; when the two p50s are within each other's noise
            # (exact no slower than none), the service's count query timed directly.
            basis = row.get("api_count_cost_ms") or row.get("service_count_sql_p50_ms")
            row["ratio"] = basis / plain["p50_ms"] if basis is not None and plain["p50_ms"] else None
            row["met"] = row["ratio"] is not None and row["ratio"] <= 1.5 and row["count_matches"]
            plain_ms = None if plain["p50_ms"] is None else round(plain["p50_ms"], 1)
            log(f"count {shape.name}: count(*) {plain_ms} ms ({plain['count']}), API exact "
                f"{timing['p50_ms']:.1f} ms ({timing.get('count')}), count cost "
                f"{basis if basis is None else round(basis, 1)} ms, ratio {row['ratio']}")  # fmt: skip
            rows.append(row)
    results["counts"] = rows


def more_tokens(actor: seed.Actor, count: int) -> list[str]:
    """`count` tokens of the actor's user (its own first): the rate limits are per token."""
    from django.contrib.auth import get_user_model

    from orgs.services import issue_token

    user = get_user_model().objects.get(pk=actor.user_id)
    return [actor.token] + [issue_token(user) for _ in range(count - 1)]


def run(args) -> int:
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results: dict = {"args": vars(args), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                     "load_start": os.getloadavg()}  # fmt: skip
    database, cast = prepare(args, results)
    results["machine"] = report.machine_facts(database)
    results["service_role"] = benchdb.service_role_facts(database)
    role = results["service_role"]
    log(f"service role: {role['role']} (superuser: {role['superuser']}), catalog matches template1: "
        f"{role['catalog_matches_template1']}")  # fmt: skip
    server = Server(database.owner_url, out / "gunicorn.log")
    results["server_command"] = server.command
    clients: dict = {}
    try:
        log(f"starting {server.command}")
        server.start(cast.owner.token, cast.main_org)
        if not args.only or "main" in args.only:
            measure_main(args, database, cast, server, clients, results)
        if not args.only or "smart-list" in args.only:
            log("smart list: export of the main org (CSV) against COPY (SELECT …) TO STDOUT, then a bulk add-tag "
                "on all of it against one raw UPDATE of the same rows")  # fmt: skip
            results["smart_list"] = smartlist.run(database, server, cast, out)
        if not args.only or "duplicates" in args.only:
            log("duplicates: GET /contacts/duplicates (first page) with planted duplicate pairs")
            tokens = {"owner": more_tokens(cast.owner, 4), "assigned": more_tokens(cast.assigned, 4)}
            results["duplicates"] = duplicates.run(database, server, cast, tokens)
        if not args.only or "feed" in args.only:
            log(f"feed: {feed.RATE} contact writes/s for {feed.SECONDS} s, GET /changes and a webhook")
            results["feed"] = feed.run(database, server, cast, more_tokens(cast.owner, 40), out)
        if args.async_import_rows and (not args.only or "async-import" in args.only):
            log(f"async import: {args.async_import_rows:,} new rows, then the same rows half changed, as jobs of "
                "one manage.py worker, against COPY (and COPY + merge) of the same rows")  # fmt: skip
            results["async_import"] = asyncimport.run(database, server, out, args.async_import_rows)
    finally:
        for client in clients.values():
            client.close()
        server.stop()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["load_end"] = os.getloadavg()
    name = f"results-{args.contacts}{''.join('-' + phase for phase in args.only or [])}.json"
    (out / name).write_text(json.dumps(results, indent=2, default=str))
    text = report.write(results, Path(args.report), Path(args.chart), args.command)
    print(text)
    return 0


def measure_main(args, database, cast, server, clients: dict, results: dict) -> None:
    """Every phase but the async import: shapes, counts, wrk, the synchronous import, many tenants."""
    owner_tokens = more_tokens(cast.owner, 40)
    clients["owner"] = Client(server.port, owner_tokens, cast.main_org)
    clients["assigned"] = Client(server.port, more_tokens(cast.assigned, 10), cast.main_org)
    caps = measure.Capabilities(clients["owner"])
    results["capabilities"] = caps.describe()
    log(f"API capabilities: {caps.describe()}")
    shapes = run_shapes(args, database, cast, clients.__getitem__, caps, results)
    run_counts(args, database, cast, clients["owner"], caps, shapes, results)
    log(f"wrk: GET /contacts/{{id}} for {args.wrk_seconds} s, {args.wrk_connections} connections")
    results["wrk"] = wrkbench.run(server.port, owner_tokens, cast.main_org, cast.sample["contact_ids"],
                                  Path(args.out_dir) / "get_contact.lua", args.wrk_seconds,
                                  args.wrk_connections)  # fmt: skip
    log(f"wrk: {results['wrk'].get('rps')} requests/s")
    if caps.import_ and args.import_rows:
        log(f"import: {args.import_rows:,} new rows, then {args.import_rows:,} upserts (half existing)")
        clients["import"] = Client(server.port, cast.import_owner.token, cast.import_org)
        results["import"] = importbench.run(database, clients["import"], cast.import_org, args.import_rows,
                                            args.import_batch)  # fmt: skip
        log(f"import: {json.dumps({k: results['import'][k].get('ratio') for k in ('new', 'upsert')})}")
    else:
        results["import"] = {"error": f"POST /contacts/import is not available (status {caps.import_status})"}
    if args.many_tenants:
        run_many_tenants(args, database, cast, clients.__getitem__, shapes, results)
