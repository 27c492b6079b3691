"""Import through POST /contacts/import versus raw COPY of the same rows (DESIGN §5).

New rows: API import of N new contacts vs COPY of the same rows into contacts_contact (rolled back).
Upserts: N rows, half of them already there (same email, changed fields) vs COPY into a staging
table then INSERT ... SELECT ... ON CONFLICT ((org_id), lower(email)) DO UPDATE (rolled back).
Both run in the dedicated import org, in the same indexed table as the 1.2M seeded rows.

Every timed run starts from a vacuumed table (`settle`). A rolled-back COPY leaves its rows
behind as dead tuples, and their keys in every index; the next run inserting the same emails
then visits each dead duplicate in the unique index. Measured on this machine: the same
25,000-row raw COPY took 1.38 s, and 1.87 s right after a rolled-back copy of itself.
Without the VACUUM, whichever side runs second pays for the first.
"""

from __future__ import annotations

import datetime as dt
import json
import time

from bench import data
from bench.db import BenchDatabase

IMPORT_PATH = "/api/v1/contacts/import"
OPTIONS = {"dedupe_on": "email", "on_duplicate": "update"}
MERGE_SQL = """
INSERT INTO contacts_contact ({cols})
SELECT {cols} FROM bench_staging
ON CONFLICT (org_id, lower(email)) DO UPDATE SET
    first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, name = EXCLUDED.name,
    phone = coalesce(EXCLUDED.phone, contacts_contact.phone), company = EXCLUDED.company,
    source = EXCLUDED.source, notes = EXCLUDED.notes,
    tags = ARRAY(SELECT DISTINCT t FROM unnest(contacts_contact.tags || EXCLUDED.tags) AS t ORDER BY t),
    dnc = EXCLUDED.dnc, custom = contacts_contact.custom || EXCLUDED.custom,
    search_text = EXCLUDED.search_text, updated_at = EXCLUDED.updated_at
"""


def make_rows(org_id: int, count: int, seed: int, prefix: str, start_index: int = 0) -> list[dict]:
    factory = data.ContactFactory(seed, dt.datetime.now(dt.UTC))
    rows = []
    for i in range(start_index, start_index + count):
        contact = factory.api_contact(org_id, 10_000_000 + i, prefix)
        if not contact["email"]:  # upserts dedupe on email: every import row has one
            contact["email"] = data.email_for(contact["first_name"], contact["last_name"], i, "import.test", prefix)
        rows.append(contact)
    return rows


def changed(rows: list[dict], seed: int) -> list[dict]:
    """The same contacts (same emails) with fields a re-import would change."""
    factory = data.ContactFactory(seed, dt.datetime.now(dt.UTC))
    out = []
    for row in rows:
        fresh = factory.api_contact(0, 0)
        out.append(
            {
                **row,
                "company": fresh["company"],
                "source": fresh["source"],
                "tags": fresh["tags"],
                "custom": {k: v for k, v in fresh["custom"].items() if k != "external_id"},
            }
        )
    return out


def raw_copy(db: BenchDatabase, org_id: int, rows: list[dict]) -> float:
    """Seconds to COPY the rows into contacts_contact (all indexes live), rolled back."""
    now = dt.datetime.now(dt.UTC)
    factory = data.ContactFactory(0, now)
    prepared = [factory.copy_row(r, org_id, None, now, now) for r in rows]
    cols = ", ".join(data.COPY_COLUMNS)
    with db.connect() as conn:
        conn.autocommit = False
        with conn.cursor() as cur:
            started = time.perf_counter()
            with cur.copy(f"COPY contacts_contact ({cols}) FROM STDIN") as copy:
                for row in prepared:
                    copy.write_row(row)
            elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def raw_merge(db: BenchDatabase, org_id: int, rows: list[dict]) -> float:
    """Seconds to COPY into a staging table and merge with ON CONFLICT DO UPDATE, rolled back."""
    now = dt.datetime.now(dt.UTC)
    factory = data.ContactFactory(0, now)
    prepared = [factory.copy_row(r, org_id, None, now, now) for r in rows]
    cols = ", ".join(data.COPY_COLUMNS)
    with db.connect() as conn:
        conn.autocommit = False
        with conn.cursor() as cur:
            started = time.perf_counter()
            cur.execute(f"CREATE TEMP TABLE bench_staging AS SELECT {cols} FROM contacts_contact WITH NO DATA")
            with cur.copy(f"COPY bench_staging ({cols}) FROM STDIN") as copy:
                for row in prepared:
                    copy.write_row(row)
            cur.execute(MERGE_SQL.format(cols=cols))
            elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def settle(db: BenchDatabase) -> None:
    """VACUUM contacts_contact: no dead tuples left by the previous run (see the module docstring)."""
    with db.connect() as conn:
        conn.execute("VACUUM contacts_contact")


def api_import(client, rows: list[dict], batch: int) -> dict:
    totals = {"total": 0, "created": 0, "updated": 0, "skipped": 0, "failed": 0}
    errors, statuses, elapsed = [], set(), 0.0
    for start in range(0, len(rows), batch):
        body = json.dumps({"contacts": rows[start : start + batch], "options": OPTIONS}).encode()
        status, result, seconds = client.call("POST", IMPORT_PATH, body)
        elapsed += seconds
        statuses.add(status)
        if status == 200 and isinstance(result, dict):
            for key in totals:
                totals[key] += result.get(key) or 0
            errors.extend((result.get("errors") or [])[:3])
        else:
            errors.append({"status": status, "body": json.dumps(result)[:300]})
    return {**totals, "seconds": elapsed, "statuses": sorted(statuses), "errors": errors[:5]}


def run(db: BenchDatabase, client, org_id: int, rows_count: int, batch: int) -> dict:
    with db.connect() as conn:  # a reused database: start the import org empty
        conn.execute("DELETE FROM contacts_contact WHERE org_id = %s", [org_id])
    new_rows = make_rows(org_id, rows_count, seed=101, prefix="imp.")
    results: dict = {"rows": rows_count, "batch": batch, "options": OPTIONS}

    settle(db)
    copy_s = raw_copy(db, org_id, new_rows)
    settle(db)
    api = api_import(client, new_rows, batch)
    results["new"] = {
        "copy_rows_per_s": rows_count / copy_s,
        "api_rows_per_s": rows_count / api["seconds"] if api["seconds"] else None,
        "api": api,
    }
    half = rows_count // 2
    upsert_rows = changed(new_rows[:half], seed=202) + make_rows(org_id, rows_count - half, 303, "ups.", rows_count)
    settle(db)
    merge_s = raw_merge(db, org_id, upsert_rows)
    settle(db)
    api = api_import(client, upsert_rows, batch)
    results["upsert"] = {
        "merge_rows_per_s": rows_count / merge_s,
        "api_rows_per_s": rows_count / api["seconds"] if api["seconds"] else None,
        "api": api,
    }
    for key, raw in (("new", "copy_rows_per_s"), ("upsert", "merge_rows_per_s")):
        api_rate = results[key]["api_rows_per_s"]
        ok = 200 in results[key]["api"]["statuses"] and set(results[key]["api"]["statuses"]) == {200}
        results[key]["ratio"] = api_rate / results[key][raw] if ok and api_rate else None
    return results
