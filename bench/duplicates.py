"""The duplicate finder over the main org (issue 20: first page of groups ≤ 2 s at 1M contacts).

The seed's names come from 55 first × 55 last names and 104 companies, so name + company already
links some 650,000 of the main org's contacts in about 210,000 groups, and random phones give a few
thousand shared numbers; no seeded address is at a provider that ignores dots or `+tags`. So that
every rule is exercised, PLANTED pairs of new contacts are added first (as the loader, triggers
off): each pair one Gmail mailbox written two ways, every other pair also sharing a phone, every
third also name + company. They are deleted afterwards, so a reused database goes on as it was.

Timed: `GET /contacts/duplicates` (first page, `limit` 20) for the owner and the assigned-only
member (p50 of RUNS after WARMUP), and the SQL statement that finds the key groups, run directly
as the app role in the org (p50), so the rest is the merge, the score and the page in Python.
"""

from __future__ import annotations

import statistics
import time

from bench import seed
from bench.db import BenchDatabase
from bench.server import Client

PLANTED = 3000
MARK = "bench-duplicates"  # `source` of the planted contacts: what the clean-up deletes
RUNS = 7
WARMUP = 2
LIMIT = 20


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] duplicates: {message}", flush=True)


def plant(database: BenchDatabase, org_id: int, pairs: int) -> int:
    """`pairs` pairs of contacts that are one person, at ids after every existing one."""
    from psycopg.types.json import Jsonb

    from contacts.normalize import build_folded, build_search_text, email_key

    rows = []
    for k in range(pairs):
        phone = f"+1555{k:07d}" if k % 2 == 0 else None
        company = "Planted Dupes Inc" if k % 3 == 0 else ""
        for email in (f"bench.dup{k}@gmail.com", f"benchdup{k}+crm@googlemail.com"):
            name = f"Dupe Person{k}"
            folded = build_folded({"name": name, "first_name": "Dupe", "last_name": f"Person{k}", "company": company,
                                   "source": MARK})  # fmt: skip
            rows.append((org_id, "Dupe", f"Person{k}", name, email, email_key(email), phone, company, MARK,
                         Jsonb(folded), build_search_text(name, email, phone, company)))  # fmt: skip
    with database.connect() as conn:
        conn.execute("SET session_replication_role = replica")  # no history or change triggers: not a user's write
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO contacts_contact (org_id, first_name, last_name, name, email, email_key, phone, company, "
                "source, folded, search_text, notes, dnc, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '', false, now(), now())",
                rows,
            )
        conn.execute("VACUUM (ANALYZE) contacts_contact")  # the visibility map: the key scans stay index-only
    return len(rows)


def remove(database: BenchDatabase, org_id: int) -> int:
    with database.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        deleted = conn.execute("DELETE FROM contacts_contact WHERE org_id = %s AND source = %s", [org_id, MARK])
        return deleted.rowcount


def time_sql(database: BenchDatabase, org_id: int, user_id: int | None) -> dict:
    """The key-groups statement as the service runs it: the app role, the org set."""
    from django.conf import settings

    if user_id is None:
        statement, params = "SELECT reason, ids FROM contacts_duplicate_keys(10)", []
    else:
        statement, params = "SELECT reason, ids FROM contacts_assigned_duplicate_keys(%s, 10)", [user_id]
    times, rows = [], 0
    with database.connect() as conn:
        conn.autocommit = False
        conn.execute(f"SET ROLE {settings.RLS_APP_ROLE}")
        conn.execute("SELECT set_config('app.org_id', %s, false)", [str(org_id)])
        for run in range(WARMUP + RUNS):
            started = time.perf_counter()
            rows = len(conn.execute(statement, params).fetchall())
            if run >= WARMUP:
                times.append(time.perf_counter() - started)
        conn.rollback()
    return {"p50_ms": statistics.median(times) * 1000, "key_groups": rows}


def time_api(client: Client) -> dict:
    times, statuses, body = [], set(), None
    for run in range(WARMUP + RUNS):
        status, body, elapsed = client.call("GET", "/api/v1/contacts/duplicates", params={"limit": LIMIT})
        statuses.add(status)
        if run >= WARMUP:
            times.append(elapsed)
    result = {"p50_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000, "n": len(times),
              "statuses": sorted(statuses)}  # fmt: skip
    if isinstance(body, dict) and status == 200:
        result["groups"] = body["count"]
        result["first_page"] = [{"score": g["score"], "reasons": g["reasons"], "size": len(g["ids"])}
                                for g in body["results"][:5]]  # fmt: skip
    elif isinstance(body, dict):
        result["error"] = str(body)[:300]
    return result


def run(database: BenchDatabase, server, cast: seed.Cast, tokens: dict[str, list[str]]) -> dict:
    org = cast.main_org
    section: dict = {"planted_pairs": PLANTED, "runs": RUNS, "warmup": WARMUP, "limit": LIMIT}
    removed = remove(database, org)  # what an interrupted run left
    try:
        section["planted_contacts"] = plant(database, org, PLANTED)
        log(f"planted {section['planted_contacts']:,} contacts ({PLANTED:,} pairs; removed {removed} left before)")
        for who, actor in (("owner", cast.owner), ("assigned", cast.assigned)):
            client = Client(server.port, tokens[who], org)
            try:
                api = time_api(client)
            finally:
                client.close()
            sql = time_sql(database, org, actor.user_id if who == "assigned" else None)
            section[who] = {"api": api, "sql": sql}
            log(f"{who}: API p50 {api['p50_ms']:.0f} ms (max {api['max_ms']:.0f}), {api.get('groups')} groups; "
                f"key-groups SQL p50 {sql['p50_ms']:.0f} ms, {sql['key_groups']:,} key groups")  # fmt: skip
    except Exception as exc:  # the report still gets written, with what was measured
        section["error"] = f"{type(exc).__name__}: {exc}"
        log(f"stopped by {section['error']}")
    finally:
        section["removed"] = remove(database, org)
    return section
