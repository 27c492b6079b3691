"""DESIGN §5 "Many tenants": thousands more orgs, 20 custom fields each, values for their contacts.

Seeded with COPY by the loader (a superuser: COPY into tables under forced row-level security is
refused to every other role), straight into the live, indexed tables while the service keeps
running: organizations, their custom fields (5 of every filterable scalar kind: text, number,
date, datetime), their contacts and one value row per contact and field, each built by the
application's own functions (contacts.normalize for the contact, stored_rows for the values).
Ids come from the tables' sequences. The orgs are named TENANT_PREFIX + number, which is how a
reused database finds and removes them before its own "before" figures (`remove`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import statistics
import time

from psycopg.types.json import Jsonb

from bench import data, rows, seed
from bench.db import BenchDatabase
from crm.progress import ProgressBar

TENANT_PREFIX = "Bench tenant "
KINDS = ("text", "number", "date", "datetime")  # the filterable scalar kinds
FIELDS_PER_KIND = 5
FIELDS = [(f"{kind}_{k}", kind) for kind in KINDS for k in range(1, FIELDS_PER_KIND + 1)]
POOL = 4096  # distinct values per kind, pre-formatted (see bench.rows)
WORDS = ("north", "south", "gold", "silver", "alpha", "beta", "retail", "wholesale", "priority", "standard")
ORG_COLUMNS = ("id", "name", "default_region", "timezone", "created_at")
FIELD_COLUMNS = ("id", "org_id", "key", "name", "data_type", "options", "position", "created_at", "updated_at")
TABLES = ("orgs_organization", "customization_customfield", "contacts_contact", "contacts_fieldvalue")
# Written by the history's and the feed's triggers on every write of contacts (the import phase's,
# removing a run's tenants, the timed writes): vacuumed before each side is measured, so that an
# autovacuum of them (the history holds millions of rows after a few runs) does not take one of the
# two CPUs during one side's writes (it did: +37% and +49% on create, in two runs of 2026-12-05).
TRIGGER_TABLES = ("history_contactchange", "changes_commit", "changes_feedstate", "changes_objectchange")


def existing(db: BenchDatabase) -> list[int]:
    with db.connect() as conn:
        found = conn.execute("SELECT id FROM orgs_organization WHERE name LIKE %s", [TENANT_PREFIX + "%"])
        return [row[0] for row in found]


def remove(db: BenchDatabase) -> dict:
    """Delete the tenant orgs and everything of theirs (a reused database, or a run that stopped half-way)."""
    org_ids = existing(db)
    if not org_ids:
        return {"removed_orgs": 0}
    started = time.monotonic()
    with db.connect() as conn, conn.transaction():
        # contacts cascade to their tags and values, fields to theirs (contacts migration 0006's keys).
        for table in ("contacts_contact", "customization_customfield", "customization_tag", "orgs_organization"):
            column = "id" if table == "orgs_organization" else "org_id"
            conn.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [org_ids])
    with db.connect() as conn:
        conn.execute(f"VACUUM ANALYZE {', '.join(TABLES)}, contacts_contacttag")
    return {"removed_orgs": len(org_ids), "remove_s": time.monotonic() - started}


def _value_pools(cursor, rng: random.Random, fields: dict) -> dict[str, list[bytes]]:
    """POOL pre-formatted value tails per kind, built by stored_rows from canonical values."""
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    makers = {
        "text": lambda: f"{rng.choice(WORDS).title()} {rng.randrange(100000)}",
        "number": lambda: round(rng.lognormvariate(6, 1.5), 2),
        "date": lambda: (dt.date(2020, 1, 1) + dt.timedelta(days=rng.randrange(3650))).isoformat(),
        "datetime": lambda: (start + dt.timedelta(seconds=rng.randrange(3 * 365 * 86400))).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        ),
    }
    return {
        kind: [tail for _, tail in rows.tails(cursor, fields, [(kind, makers[kind]()) for _ in range(POOL)])]
        for kind in KINDS
    }


def settle(db: BenchDatabase) -> float:
    """VACUUM ANALYZE TRIGGER_TABLES; returns the seconds it took (off the clock)."""
    started = time.monotonic()
    with db.connect() as conn:
        conn.execute(f"VACUUM ANALYZE {', '.join(TRIGGER_TABLES)}")
    return time.monotonic() - started


def add(db: BenchDatabase, orgs: int, contacts_per_org: int, seed_value: int = 11) -> dict:
    """COPY `orgs` tenant orgs with len(FIELDS) custom fields each and `contacts_per_org` contacts
    holding a value of every field, then VACUUM ANALYZE (so autovacuum does not wake up during
    the measurements after). Returns counts and timings."""
    rng = random.Random(seed_value)
    started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    contacts = orgs * contacts_per_org
    factory = data.ContactFactory(seed_value, now, pool_size=1)
    templates = {kind: rows.template_field(kind, kind, []) for kind in KINDS}
    with seed.loading(db, 4) as (conn, field_conn, contact_conn, value_conn):
        first_org = seed.reserve_ids(conn, "orgs_organization", orgs)
        first_field = seed.reserve_ids(conn, "customization_customfield", orgs * len(FIELDS))
        first_contact = seed.reserve_ids(conn, "contacts_contact", contacts)
        with conn.cursor() as cur:
            pools = _value_pools(cur, rng, templates)
        bar = ProgressBar(orgs, "COPY tenant orgs, fields, contacts, values")
        value_rows = 0
        with contextlib.ExitStack() as stack:
            org_copy = seed.copy_into(stack, conn, "orgs_organization", ORG_COLUMNS)
            field_copy = seed.copy_into(stack, field_conn, "customization_customfield", FIELD_COLUMNS)
            contact_copy = seed.copy_into(stack, contact_conn, "contacts_contact", data.COPY_COLUMNS)
            value_copy = seed.copy_into(stack, value_conn, "contacts_fieldvalue", data.VALUE_COLUMNS)
            for k in range(orgs):
                org = first_org + k
                org_copy.write_row((org, f"{TENANT_PREFIX}{k:05d}", "US", "UTC", now))
                field_ids = {}
                for position, (key, kind) in enumerate(FIELDS):
                    field_ids[key] = first_field + k * len(FIELDS) + position
                    field_copy.write_row((field_ids[key], org, key, key.replace("_", " ").title(), kind, Jsonb([]),
                                          position, now, now))  # fmt: skip
                for i in range(contacts_per_org):
                    contact = first_contact + k * contacts_per_org + i
                    created = now - dt.timedelta(seconds=rng.randrange(30 * 86400))
                    row, _, _ = factory.seed_row(contact, org, i, None, created, created)
                    contact_copy.write_row(row)
                    stamp = rows.copy_time(created)
                    value_copy.write(b"".join(
                        rows.value_line(org, contact, field_ids[key], stamp, pools[kind][int(rng.random() * POOL)])
                        for key, kind in FIELDS))  # fmt: skip
                    value_rows += len(FIELDS)
                if k % 500 == 499:
                    bar.advance(500)
            bar.advance(orgs - bar.done)
        copy_s = time.monotonic() - started
        conn.execute("SET session_replication_role = DEFAULT")
        t0 = time.monotonic()
        conn.execute(f"VACUUM ANALYZE {', '.join(TABLES)}")
        vacuum_s = time.monotonic() - t0
    return {
        "orgs": orgs, "fields": orgs * len(FIELDS), "contacts": contacts, "value_rows": value_rows,
        "copy_s": copy_s, "vacuum_analyze_s": vacuum_s, "total_s": time.monotonic() - started,
    }  # fmt: skip


WRITE_DOMAIN = "writes.bench.test"


def time_writes(client, run_tag: str, count: int, warmup: int) -> dict:
    """p50 of a single-contact create (POST /contacts) and of a PATCH of one of them (PATCH
    /contacts/{id}), both with custom values (their rows share contacts_fieldvalue and its indexes
    with every tenant's). Returns the timings and the ids created (for `remove_writes`)."""
    created, times, statuses, errors = [], {"create": [], "patch": []}, {"create": set(), "patch": set()}, []
    for i in range(warmup + count):
        body = {
            "first_name": "Write", "last_name": f"Bench {i}", "email": f"w.{run_tag}.{i}@{WRITE_DOMAIN}",
            "phone": f"+1415{2000000 + i}", "company": "Acme Inc", "tags": ["customer", "hot"],
            "custom": {"plan": "Pro", "deal_size": 1000 + i, "renewal_on": "2027-01-15",
                       "last_seen_at": "2026-01-15T10:00:00Z"},
        }  # fmt: skip
        status, answer, elapsed = client.call("POST", "/api/v1/contacts", body)
        statuses["create"].add(status)
        if status == 201 and isinstance(answer, dict):
            created.append(answer["id"])
        elif len(errors) < 3:
            errors.append({"create": status, "body": str(answer)[:300]})
        if i >= warmup:
            times["create"].append(elapsed)
    for i, contact_id in enumerate(created):
        body = {"company": f"Globex {i}", "custom": {"deal_size": 2000 + i}}
        status, answer, elapsed = client.call("PATCH", f"/api/v1/contacts/{contact_id}", body)
        statuses["patch"].add(status)
        if status != 200 and len(errors) < 3:
            errors.append({"patch": status, "body": str(answer)[:300]})
        if i >= warmup:
            times["patch"].append(elapsed)
    result = {"ids": created, "errors": errors}
    for kind, values in times.items():
        result[kind] = {"p50_ms": statistics.median(values) * 1000 if values else None, "n": len(values),
                        "statuses": sorted(statuses[kind])}  # fmt: skip
    return result


def remove_writes(db: BenchDatabase, org_id: int) -> int:
    """Delete the contacts `time_writes` created (their tags and values cascade)."""
    with db.connect() as conn:
        cur = conn.execute(
            "DELETE FROM contacts_contact WHERE org_id = %s AND email_key LIKE %s", [org_id, f"%@{WRITE_DOMAIN}"]
        )
        return cur.rowcount
