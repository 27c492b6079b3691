"""Async import through the job system versus raw COPY of the same rows (DESIGN §5, issue 18).

`POST /contacts/import?async=true` with a CSV body of N new contacts (bench.importbench's rows),
timed from the POST until `GET /jobs/{id}` says `succeeded`, run by one `manage.py worker`
started for the phase with the gunicorn server's environment; then the same N rows again, half
of them changed (`iter_changed`), as an upsert. Side by side, the same rows through the loader:
COPY into contacts_contact, contacts_contacttag and contacts_fieldvalue (committed: the upsert
merges into them), then COPY into staging tables and the merge of bench.importbench.raw_merge.
Each side has a fresh org of its own (ASYNC_PREFIX), in the same indexed tables as the seeded rows.

The rows are generated once per pass, in chunks: each chunk is written to the CSV and formatted
for COPY off the clock, then COPYed on the clock, in one transaction whose commit is timed too
(the job commits its steps). A million rows are never held at once, in this process or the worker.

The worker's resident memory (the process and its children) is sampled every SAMPLE_S seconds
from the moment it is ready, idle, until it stops: start, peak and growth.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from bench import data, importbench, seed
from bench.db import REPO, BenchDatabase
from bench.importbench import IMPORT_PATH, OPTIONS, Catalog

ASYNC_PREFIX = "Bench async "  # the phase's orgs; a reused database removes them (`remove`)
CHUNK = 25_000  # rows generated, written and COPYed at a time
SAMPLE_S = 0.5  # the worker's RSS
POLL_S = 0.5  # GET /jobs/{id}
FINISHED = ("succeeded", "failed", "cancelled", "undone")
CUSTOM_KEYS = [key for key, *_ in data.CUSTOM_FIELDS]
CSV_HEADER = ["first_name", "last_name", "email", "phone", "company", "source", "notes", "dnc", "tags",
              *(f"custom.{key}" for key in CUSTOM_KEYS)]  # fmt: skip
MB = 1024 * 1024
CHILD_FIRST = ("contacts_fieldvalue", "contacts_contacttag", "contacts_importjournal", "contacts_importissue",
               "contacts_importupload")  # fmt: skip


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] async import: {message}", flush=True)


# --- the CSV ---------------------------------------------------------------------------------------


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(item) for item in value)
    return str(value)


def csv_row(contact: dict) -> list[str]:
    """An import row (importbench.iter_rows) as a CSV record under CSV_HEADER; empty cells fill nothing."""
    custom = contact.get("custom") or {}
    return [cell(contact.get(name)) for name in CSV_HEADER[:9]] + [cell(custom.get(key)) for key in CUSTOM_KEYS]


# --- the raw side ----------------------------------------------------------------------------------


class RawLoad:
    """The loader's side of one pass, fed chunk by chunk in one transaction: each chunk formatted
    off the clock, its COPYs on it; `finish` times the merge (upserts) and the commit."""

    def __init__(self, db: BenchDatabase, catalog: Catalog, merge: bool):
        self.catalog, self.merge, self.seconds, self.rows = catalog, merge, 0.0, 0
        self.now = dt.datetime.now(dt.UTC)
        self.conn = db.connect()
        self.conn.autocommit = False
        self.cur = self.conn.cursor()
        if merge:
            self._timed(importbench.create_staging, self.cur)

    def _timed(self, fn, *args) -> None:
        started = time.perf_counter()
        fn(*args)
        self.seconds += time.perf_counter() - started

    def add(self, contacts: list[dict]) -> None:
        self.rows += len(contacts)
        # Formatted by a cursor of its own: psycopg formats COPY rows only on a cursor that has run nothing.
        with self.conn.cursor() as fmt:
            if self.merge:
                blobs = importbench.staging_blobs(fmt, self.catalog, contacts, self.now)
            else:
                pairs = list(zip(importbench.next_ids(self.conn, len(contacts)), contacts, strict=True))
                blobs = importbench.copy_blobs(fmt, self.catalog, pairs, self.now)
        self._timed(importbench.copy_staging if self.merge else importbench.copy_contacts, self.cur, blobs)

    def finish(self) -> float:
        if self.merge:
            self._timed(importbench.merge_staging, self.cur, self.catalog.org_id)
        self._timed(self.conn.commit)
        self.cur.close()
        self.conn.close()
        return self.seconds


def feed(contacts, csv_path: Path, raw: RawLoad) -> dict:
    """Write the rows to `csv_path` and COPY them (raw), CHUNK at a time. Returns the CSV's size."""
    rows = iter(contacts)
    with open(csv_path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        while chunk := list(itertools.islice(rows, CHUNK)):
            writer.writerows(csv_row(contact) for contact in chunk)
            raw.add(chunk)
    return {"rows": raw.rows, "csv_bytes": csv_path.stat().st_size, "raw_s": raw.finish()}


# --- the worker ------------------------------------------------------------------------------------


class Worker:
    """`manage.py worker` with the environment gunicorn gets (bench.server.Server.env: DATABASE_URL
    as the service's role, DEBUG=0), and its memory sampled on a thread."""

    def __init__(self, env: dict, log_path: Path):
        self.env, self.log_path = env, log_path
        self.proc = None
        self.samples: list[tuple[float, int]] = []  # (monotonic time, RSS bytes)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self, db: BenchDatabase, timeout: float = 60) -> None:
        """Start it and wait until it has registered with the queue (a procrastinate_workers row)."""
        with db.connect() as conn:
            before = conn.execute("SELECT coalesce(max(id), 0) FROM procrastinate_workers").fetchone()[0]
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "manage.py", "worker"], cwd=REPO, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip
        deadline = time.monotonic() + timeout
        with db.connect() as conn:
            while conn.execute("SELECT 1 FROM procrastinate_workers WHERE id > %s", [before]).fetchone() is None:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"manage.py worker did not start (exit {self.proc.poll()}); see {self.log_path}")
                time.sleep(0.2)
        time.sleep(1.0)  # idle: its imports done, its first heartbeat sent
        self._thread.start()

    def rss(self) -> int | None:
        try:
            process = psutil.Process(self.proc.pid)
            return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
        except psutil.Error:
            return None

    def _sample(self) -> None:
        while not self._stop.is_set():
            rss = self.rss()
            if rss is not None:
                self.samples.append((time.monotonic(), rss))
            self._stop.wait(SAMPLE_S)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def memory(self, since: float | None = None, until: float | None = None) -> dict:
        """RSS in MB: at the start (the idle worker's first sample), the peak and the last sample
        between `since` and `until` (monotonic; all by default), and growth = that peak - start."""
        chosen = [rss for t, rss in self.samples if (since is None or t >= since) and (until is None or t <= until)]
        if not chosen:
            return {}
        start, peak = self.samples[0][1], max(chosen)
        return {"start_mb": start / MB, "peak_mb": peak / MB, "end_mb": chosen[-1] / MB,
                "growth_mb": (peak - start) / MB, "samples": len(chosen)}  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        if self.alive():
            self.proc.terminate()  # SIGTERM: it finishes its running job first (none by now)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


# --- the orgs --------------------------------------------------------------------------------------


def make_orgs(run_tag: str) -> tuple[seed.Actor, int]:
    """The async import's org (its owner posts the imports) and the COPY side's, fresh, with the
    bench's tags and custom fields."""
    owner = seed.make_catalog_org(f"{ASYNC_PREFIX}import {run_tag}", "owner@async-import.bench.test")
    copy = seed.make_catalog_org(f"{ASYNC_PREFIX}copy {run_tag}", "owner@async-copy.bench.test")
    return owner, copy.org_id


def remove(db: BenchDatabase) -> dict:
    """Delete the phase's orgs (a previous run's, or this run's when it ends) and every row of
    theirs, in one transaction (the foreign keys onto the org are deferred), then VACUUM ANALYZE."""
    with db.connect() as conn:
        org_ids = [r[0] for r in conn.execute("SELECT id FROM orgs_organization WHERE name LIKE %s",
                                              [ASYNC_PREFIX + "%"])]  # fmt: skip
        if not org_ids:
            return {"removed_orgs": 0}
        started = time.monotonic()
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid WHERE a.attname = 'org_id' "
            "AND NOT a.attisdropped AND c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace "
            "AND c.relname <> 'orgs_organization'")]  # fmt: skip
        tables.sort(key=lambda t: (CHILD_FIRST.index(t) if t in CHILD_FIRST else len(CHILD_FIRST), t))
        removed = {}
        with conn.transaction():
            for table in tables:
                removed[table] = conn.execute(f"DELETE FROM {table} WHERE org_id = ANY(%s)", [org_ids]).rowcount
            conn.execute("DELETE FROM orgs_organization WHERE id = ANY(%s)", [org_ids])
        touched = [table for table, count in removed.items() if count]
        if touched:
            conn.execute(f"VACUUM ANALYZE {', '.join(touched)}")
    return {"removed_orgs": len(org_ids), "removed_rows": sum(removed.values()), "remove_s": time.monotonic() - started}


# --- the async side --------------------------------------------------------------------------------


def job_times(job: dict) -> dict:
    """Seconds the job waited in the queue and ran on the worker (the server's own timestamps)."""
    stamps = {key: dt.datetime.fromisoformat(job[key]) for key in ("created_at", "started_at", "finished_at")
              if job.get(key)}  # fmt: skip
    out = {}
    if "created_at" in stamps and "started_at" in stamps:
        out["queued_s"] = (stamps["started_at"] - stamps["created_at"]).total_seconds()
    if "started_at" in stamps and "finished_at" in stamps:
        out["worker_s"] = (stamps["finished_at"] - stamps["started_at"]).total_seconds()
    return out


def async_import(client, csv_path: Path, worker: Worker, timeout: float) -> dict:
    """POST the CSV with async=true, then GET /jobs/{id} every POLL_S until it is finished."""
    body = csv_path.read_bytes()
    since, started = time.monotonic(), time.perf_counter()
    status, job, post_s = client.call("POST", IMPORT_PATH, body, params={"async": "true", **OPTIONS},
                                      content_type="text/csv")  # fmt: skip
    del body
    if status != 202 or not isinstance(job, dict) or "id" not in job:
        return {"error": f"POST {IMPORT_PATH}?async=true answered {status}: {str(job)[:300]}"}
    out, logged = {"job_id": job["id"], "post_s": post_s}, time.monotonic()
    while job.get("status") not in FINISHED:
        if not worker.alive():
            return {**out, "error": f"the worker exited ({worker.proc.returncode}); see {worker.log_path}"}
        if time.perf_counter() - started > timeout:
            return {**out, "error": f"job {job['id']} not finished after {timeout:.0f} s ({job.get('progress')})"}
        time.sleep(POLL_S)
        status, polled, _ = client.call("GET", f"/api/v1/jobs/{job['id']}")
        job = polled if status == 200 and isinstance(polled, dict) else job
        if time.monotonic() - logged > 30:
            log(f"job {job['id']} {job.get('status')}, progress {job.get('progress')}, worker RSS "
                f"{(worker.rss() or 0) / MB:.0f} MB")  # fmt: skip
            logged = time.monotonic()
    out.update(total_s=time.perf_counter() - started, status=job["status"], result=job.get("result"),
               error_rows=(job.get("errors") or {}).get("count"), memory=worker.memory(since, time.monotonic()),
               **job_times(job))  # fmt: skip
    return out


def one_pass(db, catalog: Catalog, client, worker: Worker, contacts, csv_path: Path, merge: bool) -> dict:
    """The raw side (COPY, or COPY + merge), then the same rows as an async import."""
    importbench.settle(db)
    part = feed(contacts, csv_path, RawLoad(db, catalog, merge))
    part["raw_rows_per_s"] = part["rows"] / part["raw_s"]
    log(f"{'COPY + merge' if merge else 'COPY'} {part['rows']:,} rows in {part['raw_s']:.1f} s "
        f"({part['raw_rows_per_s']:,.0f} rows/s); CSV {part['csv_bytes'] / MB:.0f} MB")  # fmt: skip
    importbench.settle(db)
    job = async_import(client, csv_path, worker, timeout=max(600.0, part["rows"] / 200))
    part["async"] = job
    if job.get("status") == "succeeded" and job.get("total_s"):
        part["async_rows_per_s"] = part["rows"] / job["total_s"]
        part["ratio"] = part["async_rows_per_s"] / part["raw_rows_per_s"]
    log(f"async {'upsert' if merge else 'import'}: {job.get('status') or job.get('error')} in "
        f"{job.get('total_s', 0):.1f} s ({part.get('async_rows_per_s', 0):,.0f} rows/s, ratio "
        f"{part.get('ratio', 0):.0%}), result {job.get('result')}, worker {job.get('memory')}")  # fmt: skip
    return part


def upsert_rows(org_id: int, count: int, now: dt.datetime):
    """The first pass's rows again (same seed, same `now`), the first half changed."""
    base = importbench.iter_rows(org_id, count, 101, "aimp.", now=now)
    return itertools.chain(importbench.iter_changed(itertools.islice(base, count // 2), 202, now), base)


def run(db: BenchDatabase, server, out_dir: Path, rows_count: int) -> dict:
    from bench.server import Client

    results: dict = {"rows": rows_count, "options": OPTIONS, "chunk": CHUNK, "sample_s": SAMPLE_S,
                     "cleaned": remove(db)}  # fmt: skip
    owner, copy_org = make_orgs(time.strftime("%Y%m%d%H%M%S"))
    catalog = Catalog(db, copy_org)
    worker = Worker(server.env, out_dir / "worker.log")
    client = Client(server.port, owner.token, owner.org_id)
    results["worker_command"] = "python manage.py worker (DATABASE_URL and DEBUG=0 as gunicorn's)"
    csvs = [out_dir / "async-import-new.csv", out_dir / "async-import-upsert.csv"]
    now = dt.datetime.now(dt.UTC)
    try:
        worker.start(db)
        log(f"worker {worker.proc.pid} ready, RSS {(worker.rss() or 0) / MB:.0f} MB")
        new = importbench.iter_rows(owner.org_id, rows_count, 101, "aimp.", now=now)
        results["new"] = one_pass(db, catalog, client, worker, new, csvs[0], merge=False)
        if results["new"]["async"].get("status") == "succeeded":
            upserts = upsert_rows(owner.org_id, rows_count, now)
            results["upsert"] = one_pass(db, catalog, client, worker, upserts, csvs[1], merge=True)
        else:  # the upsert needs the rows, and the worker may still be busy with them
            results["error"] = "the upsert was not run: the import of new contacts did not succeed"
    except Exception as exc:  # the report still gets written, with what was measured
        results["error"] = f"{type(exc).__name__}: {exc}"
        log(f"stopped by {results['error']}")
    finally:
        client.close()
        worker.stop()
        results["worker_memory"] = worker.memory()
        for path in csvs:
            path.unlink(missing_ok=True)
        log("removing the phase's orgs and their rows")
        results["removed"] = remove(db)
        log(f"removed {results['removed']}")
    return results
