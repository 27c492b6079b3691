"""Import through POST /contacts/import versus raw COPY of the same rows (DESIGN §5).

New rows: API import of N new contacts vs COPY of the same rows into contacts_contact, their
tags into contacts_contacttag and their custom values into contacts_fieldvalue (ids taken from
the sequence beforehand, rolled back). Upserts: N rows, half of them already there (same email,
changed fields) vs COPY into staging tables, then `INSERT … SELECT … ON CONFLICT (org_id,
email_key) DO UPDATE`, the tags added (`ON CONFLICT DO NOTHING`) and the given keys' values
replaced (DELETE + INSERT), what the import does (rolled back). The raw side's rows are built
with the application's own functions and formatted before the clock starts; it runs as the
loader (a superuser: COPY into a table under forced row-level security is refused to every
other role). Both run in the dedicated import org, in the same indexed tables as the seeded rows.

Every timed run starts from vacuumed tables (`settle`). A rolled-back COPY leaves its rows
behind as dead tuples, and their keys in every index; the next run inserting the same emails
then visits each dead duplicate in the unique index. Measured on this machine: the same
25,000-row raw COPY took 1.38 s, and 1.87 s right after a rolled-back copy of itself.
Without the VACUUM, whichever side runs second pays for the first.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Iterator

from bench import data, rows, seed
from bench.db import BenchDatabase

IMPORT_PATH = "/api/v1/contacts/import"
OPTIONS = {"dedupe_on": "email", "on_duplicate": "update"}
COPY_TABLES = ("contacts_contact", "contacts_contacttag", "contacts_fieldvalue")
STAGING_COLUMNS = data.COPY_COLUMNS[1:]  # no id: new contacts take theirs from the sequence
MERGE_CONTACTS_SQL = """
WITH merged AS (
    INSERT INTO contacts_contact AS c ({cols})
    SELECT {cols} FROM bench_staging
    ON CONFLICT (org_id, email_key) DO UPDATE SET
        first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, name = EXCLUDED.name,
        email = EXCLUDED.email, phone = coalesce(EXCLUDED.phone, c.phone), company = EXCLUDED.company,
        source = EXCLUDED.source, notes = EXCLUDED.notes, dnc = EXCLUDED.dnc, folded = EXCLUDED.folded,
        search_text = EXCLUDED.search_text, updated_at = EXCLUDED.updated_at
    RETURNING c.id, c.email_key
)
INSERT INTO bench_ids SELECT id, email_key FROM merged
"""
MERGE_TAGS_SQL = """
INSERT INTO contacts_contacttag (org_id, contact_id, tag_id, created_at)
SELECT {org}, i.id, t.tag_id, c.created_at FROM bench_staging_tags t JOIN bench_ids i USING (email_key)
JOIN contacts_contact c ON c.id = i.id
ON CONFLICT DO NOTHING
"""
REPLACE_VALUES_SQL = """
DELETE FROM contacts_fieldvalue f
USING (SELECT DISTINCT i.id, v.field_id FROM bench_staging_values v JOIN bench_ids i USING (email_key)) k
WHERE f.org_id = {org} AND f.contact_id = k.id AND f.field_id = k.field_id
"""
INSERT_VALUES_SQL = """
INSERT INTO contacts_fieldvalue ({value_cols})
SELECT {org}, i.id, v.field_id, c.created_at, {tail} FROM bench_staging_values v JOIN bench_ids i USING (email_key)
JOIN contacts_contact c ON c.id = i.id
"""
TAIL = ", ".join(rows.TAIL_COLUMNS)
STAGED_TAIL = ", ".join(f"v.{column}" for column in rows.TAIL_COLUMNS)  # `created_at` is also c's


def iter_rows(org_id: int, count: int, seed: int, prefix: str, start_index: int = 0, now=None) -> Iterator[dict]:
    """The import rows one by one (the same seed and `now` give the same rows: the async import
    bench streams a million of them twice instead of keeping them)."""
    factory = data.ContactFactory(seed, now or dt.datetime.now(dt.UTC))
    for i in range(start_index, start_index + count):
        contact = factory.api_contact(org_id, 10_000_000 + i, prefix)
        if not contact["email"]:  # upserts dedupe on email: every import row has one
            contact["email"] = data.email_for(contact["first_name"], contact["last_name"], i, "import.test", prefix)
        yield contact


def make_rows(org_id: int, count: int, seed: int, prefix: str, start_index: int = 0) -> list[dict]:
    return list(iter_rows(org_id, count, seed, prefix, start_index))


def iter_changed(contacts: Iterable[dict], seed: int, now=None) -> Iterator[dict]:
    """The same contacts (same emails) with fields a re-import would change."""
    factory = data.ContactFactory(seed, now or dt.datetime.now(dt.UTC))
    for row in contacts:
        fresh = factory.api_contact(0, 0)
        yield {
            **row,
            "company": fresh["company"],
            "source": fresh["source"],
            "tags": fresh["tags"],
            "custom": {k: v for k, v in fresh["custom"].items() if k != "external_id"},
        }


def changed(contacts: list[dict], seed: int) -> list[dict]:
    return list(iter_changed(contacts, seed))


class Catalog:
    """The import org's tag ids and custom fields (with their ids), for the raw side's rows."""

    def __init__(self, db: BenchDatabase, org_id: int):
        ids = seed.lookup_ids(db, org_id)
        self.org_id, self.tag_ids = org_id, ids["tag_ids"]
        self.fields = {key: rows.template_field(key, kind, options, ids["field_ids"][key])
                       for key, _, kind, options in data.CUSTOM_FIELDS}  # fmt: skip

    def tags(self, contact: dict) -> list[int]:
        return [self.tag_ids[name] for name in contact["tags"]]

    def values(self, contact_id, contact: dict, created_at: dt.datetime) -> list[tuple]:
        return [value for key, canonical in contact["custom"].items()
                for value in rows.value_tuples(self.org_id, contact_id, self.fields[key], canonical,
                                               created_at)]  # fmt: skip


def _blob(cur, tuples: list[tuple]) -> bytes:
    return b"".join(rows.copy_lines(cur, tuples))


def _copy(cur, table: str, columns, blob: bytes) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(blob)


def copy_blobs(cur, catalog: Catalog, pairs: list[tuple[int, dict]], now: dt.datetime) -> tuple[bytes, ...]:
    """(contacts, tags, values) of (id, contact) pairs in COPY format, for `copy_contacts`."""
    factory, org = data.ContactFactory(0, now), catalog.org_id
    return (
        _blob(cur, [factory.copy_row(c, i, org, None, now, now) for i, c in pairs]),
        _blob(cur, [(org, i, t, now) for i, c in pairs for t in catalog.tags(c)]),
        _blob(cur, [v for i, c in pairs for v in catalog.values(i, c, now)]),
    )


def copy_contacts(cur, blobs: tuple[bytes, ...]) -> None:
    for table, columns, blob in zip(COPY_TABLES, (data.COPY_COLUMNS, data.TAG_COLUMNS, data.VALUE_COLUMNS), blobs,
                                    strict=True):  # fmt: skip
        _copy(cur, table, columns, blob)


def next_ids(conn, count: int) -> list[int]:
    return [r[0] for r in conn.execute("SELECT nextval(pg_get_serial_sequence('contacts_contact', 'id')) "
                                       "FROM generate_series(1, %s)", [count])]  # fmt: skip


def raw_copy(db: BenchDatabase, catalog: Catalog, contacts: list[dict]) -> float:
    """Seconds to COPY the rows, their tags and their values into the three tables (all indexes
    and foreign keys live), rolled back. The ids are taken from the sequence before the clock starts."""
    now = dt.datetime.now(dt.UTC)
    with db.connect() as conn:
        ids = next_ids(conn, len(contacts))
        conn.autocommit = False
        with conn.cursor() as cur:
            blobs = copy_blobs(cur, catalog, list(zip(ids, contacts, strict=True)), now)
            started = time.perf_counter()
            copy_contacts(cur, blobs)
            elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def staging_blobs(cur, catalog: Catalog, contacts: list[dict], now: dt.datetime) -> tuple[bytes, ...]:
    """(contacts, tags, values) keyed by email_key in COPY format, for `copy_staging`."""
    factory = data.ContactFactory(0, now)
    contact_rows = [factory.copy_row(c, None, catalog.org_id, None, now, now) for c in contacts]
    at = data.COPY_COLUMNS.index("email_key")
    keyed = list(zip((row[at] for row in contact_rows), contacts, strict=True))
    return (
        _blob(cur, [row[1:] for row in contact_rows]),
        _blob(cur, [(k, t) for k, c in keyed for t in catalog.tags(c)]),
        _blob(cur, [(k, v[2], *v[rows.HEAD :]) for k, c in keyed for v in catalog.values(0, c, now)]),
    )


def create_staging(cur) -> None:
    cols = ", ".join(STAGING_COLUMNS)
    cur.execute(f"CREATE TEMP TABLE bench_staging AS SELECT {cols} FROM contacts_contact WITH NO DATA")
    cur.execute("CREATE TEMP TABLE bench_staging_tags (email_key text, tag_id int8)")
    cur.execute("CREATE TEMP TABLE bench_staging_values AS SELECT ''::text AS email_key, field_id, "
                f"{TAIL} FROM contacts_fieldvalue WITH NO DATA")  # fmt: skip
    cur.execute("CREATE TEMP TABLE bench_ids (id int8, email_key text)")


def copy_staging(cur, blobs: tuple[bytes, ...]) -> None:
    contact_blob, tag_blob, value_blob = blobs
    _copy(cur, "bench_staging", STAGING_COLUMNS, contact_blob)
    _copy(cur, "bench_staging_tags", ("email_key", "tag_id"), tag_blob)
    _copy(cur, "bench_staging_values", ("email_key", "field_id", *rows.TAIL_COLUMNS), value_blob)


def merge_staging(cur, org_id: int) -> None:
    """The staged rows merged as the import does: contacts upserted on (org_id, email_key), tags
    added, the given keys' values replaced."""
    org = int(org_id)
    cur.execute(MERGE_CONTACTS_SQL.format(cols=", ".join(STAGING_COLUMNS)))
    cur.execute(MERGE_TAGS_SQL.format(org=org))
    cur.execute(REPLACE_VALUES_SQL.format(org=org))
    value_cols = ", ".join(data.VALUE_COLUMNS)
    cur.execute(INSERT_VALUES_SQL.format(org=org, value_cols=value_cols, tail=STAGED_TAIL))


def raw_merge(db: BenchDatabase, catalog: Catalog, contacts: list[dict]) -> float:
    """Seconds to COPY the rows, tags and values into staging tables and merge them as the import
    does (contacts upserted on (org_id, email_key), tags added, given keys' values replaced), rolled back."""
    now = dt.datetime.now(dt.UTC)
    with db.connect() as conn:
        conn.autocommit = False
        with conn.cursor() as cur:
            blobs = staging_blobs(cur, catalog, contacts, now)
            started = time.perf_counter()
            create_staging(cur)
            copy_staging(cur, blobs)
            merge_staging(cur, catalog.org_id)
            elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def settle(db: BenchDatabase) -> None:
    """VACUUM the three tables: no dead tuples left by the previous run (see the module docstring)."""
    with db.connect() as conn:
        conn.execute("VACUUM contacts_contact, contacts_contacttag, contacts_fieldvalue")


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
    with db.connect() as conn:  # a reused database: start the import org empty (tags and values cascade)
        conn.execute("DELETE FROM contacts_contact WHERE org_id = %s", [org_id])
    catalog = Catalog(db, org_id)
    new_rows = make_rows(org_id, rows_count, seed=101, prefix="imp.")
    results: dict = {"rows": rows_count, "batch": batch, "options": OPTIONS}

    settle(db)
    copy_s = raw_copy(db, catalog, new_rows)
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
    merge_s = raw_merge(db, catalog, upsert_rows)
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
