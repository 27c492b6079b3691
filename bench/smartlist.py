"""Acting on the main org's whole smart list versus PostgreSQL doing the same (DESIGN §5, issue 19).

Export: `POST /contacts/export` of every contact of the main org as CSV, with every built-in column
and EXPORT_CUSTOM custom ones, read by the client to the last byte; timed from the request to the
last byte, with gunicorn's resident memory (master and workers) sampled every SAMPLE_S seconds.
Side by side: `COPY (SELECT the same columns, tags and values joined the same way, in the same
order) TO STDOUT (FORMAT csv)` read to the last byte by the loader.

Bulk action: `POST /contacts/bulk` adding a new tag to every contact of the main org
(`expected_count` its count), timed from the POST until `GET /jobs/{id}` says `succeeded`, run by
one `manage.py worker` with gunicorn's environment. Side by side: one raw `UPDATE` of the same rows
(`updated_at = now()`), committed. Afterwards the bulk's tag rows and journal are deleted by SQL,
so a reused database goes on as it was (an undo of a million contacts is not what is measured).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path

import psutil

from bench import asyncimport, importbench
from bench.db import BenchDatabase

EXPORT_CUSTOM = ["external_id", "plan", "channels", "deal_size", "renewal_on"]
SAMPLE_S = 0.5
POLL_S = 0.5
READ_BYTES = 1 << 20
MB = 1024 * 1024
BULK_TAG = "bench-bulk"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] smart list: {message}", flush=True)


class MemorySampler:
    """The resident memory of a process and its children, sampled on a thread."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int | None:
        try:
            process = psutil.Process(self.pid)
            return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
        except psutil.Error:
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self.rss()
            if rss is not None:
                self.samples.append(rss)
            self._stop.wait(SAMPLE_S)

    def __enter__(self):
        self.start_rss = self.rss() or 0
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def summary(self) -> dict:
        peak = max(self.samples, default=self.start_rss)
        return {"start_mb": self.start_rss / MB, "peak_mb": peak / MB, "growth_mb": (peak - self.start_rss) / MB,
                "samples": len(self.samples)}  # fmt: skip


# --- export ---------------------------------------------------------------------------------------


def export_columns() -> list[str]:
    from contacts.contact_fields import CONTACT_FIELDS

    return ["id", *(field.name for field in CONTACT_FIELDS), *(f"custom.{key}" for key in EXPORT_CUSTOM)]


def raw_export_sql(conn, org_id: int) -> str:
    """The export's rows and columns as one SELECT (tags and multi-select values joined with `;`)."""
    from contacts.contact_fields import CONTACT_FIELDS

    field_ids = dict(conn.execute("SELECT key, id FROM customization_customfield WHERE org_id = %s", [org_id]))
    columns = ["c.id"]
    for field in CONTACT_FIELDS:
        if field.name == "tags":
            columns.append(
                "(SELECT string_agg(t.name, ';' ORDER BY t.name) FROM contacts_contacttag ct JOIN customization_tag t "
                "ON t.org_id = ct.org_id AND t.id = ct.tag_id WHERE ct.org_id = c.org_id AND ct.contact_id = c.id)"
            )
        else:
            columns.append(f"c.{field.column}")
    for key in EXPORT_CUSTOM:
        columns.append(
            "(SELECT string_agg(fv.value #>> '{}', ';' ORDER BY fv.position) FROM contacts_fieldvalue fv "
            f"WHERE fv.org_id = c.org_id AND fv.contact_id = c.id AND fv.field_id = {int(field_ids[key])})"
        )
    return (f"SELECT {', '.join(columns)} FROM contacts_contact c WHERE c.org_id = {int(org_id)} "
            "ORDER BY c.created_at DESC, c.id DESC")  # fmt: skip


def raw_export(db: BenchDatabase, org_id: int) -> dict:
    with db.connect() as conn:
        query = raw_export_sql(conn, org_id)
        started, size = time.perf_counter(), 0
        with conn.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT (FORMAT csv, HEADER)") as copy:
            for block in copy:
                size += len(block)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": size}


def api_export(port: int, token: str, org_id: int, gunicorn_pid: int) -> dict:
    """The export read to its last byte; rows counted by line (the bench's values hold no newline)."""
    body = json.dumps({"columns": export_columns(), "format": "csv"}).encode()
    headers = {"Authorization": f"Bearer {token}", "X-Org-Id": str(org_id), "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3600)
    size = lines = 0
    with MemorySampler(gunicorn_pid) as memory:
        started = time.perf_counter()
        conn.request("POST", "/api/v1/contacts/export", body=body, headers=headers)
        response = conn.getresponse()
        first_byte = time.perf_counter() - started
        while block := response.read(READ_BYTES):
            size += len(block)
            lines += block.count(b"\n")
        seconds = time.perf_counter() - started
    conn.close()
    return {"status": response.status, "seconds": seconds, "first_byte_s": first_byte, "bytes": size,
            "rows": max(lines - 1, 0), "memory": memory.summary()}  # fmt: skip


# --- bulk -----------------------------------------------------------------------------------------


def raw_update(db: BenchDatabase, org_id: int) -> dict:
    with db.connect() as conn:
        conn.autocommit = False
        started = time.perf_counter()
        rows = conn.execute("UPDATE contacts_contact SET updated_at = now() WHERE org_id = %s", [org_id]).rowcount
        conn.commit()
        return {"seconds": time.perf_counter() - started, "rows": rows}


def api_bulk(client, expected: int, tag: str, worker, timeout: float) -> dict:
    body = {"expected_count": expected, "action": {"add_tags": [tag]}}
    started = time.perf_counter()
    status, answer, post_s = client.call("POST", "/api/v1/contacts/bulk", body)
    if status != 202 or not isinstance(answer, dict) or "job" not in answer:
        return {"error": f"POST /contacts/bulk answered {status}: {str(answer)[:300]}"}
    job, logged = answer["job"], time.monotonic()
    while job.get("status") not in asyncimport.FINISHED:
        if not worker.alive():
            return {"job_id": job["id"], "error": f"the worker exited; see {worker.log_path}"}
        if time.perf_counter() - started > timeout:
            return {"job_id": job["id"], "error": f"not finished after {timeout:.0f} s ({job.get('progress')})"}
        time.sleep(POLL_S)
        status, polled, _ = client.call("GET", f"/api/v1/jobs/{job['id']}")
        job = polled if status == 200 and isinstance(polled, dict) else job
        if time.monotonic() - logged > 30:
            log(f"bulk job {job['id']} {job.get('status')}, progress {job.get('progress')}")
            logged = time.monotonic()
    return {"job_id": job["id"], "seconds": time.perf_counter() - started, "post_s": post_s,
            "status": job["status"], "result": job.get("result"), **asyncimport.job_times(job)}  # fmt: skip


def remove_bulk(db: BenchDatabase, org_id: int, tag_prefix: str) -> dict:
    """The bulk actions' tags (this run's or an earlier one's), their rows and the jobs' journals."""
    with db.connect() as conn, conn.transaction():
        tags = [r[0] for r in conn.execute("SELECT id FROM customization_tag WHERE org_id = %s AND name LIKE %s",
                                           [org_id, tag_prefix + "%"])]  # fmt: skip
        rows = conn.execute("DELETE FROM contacts_contacttag WHERE org_id = %s AND tag_id = ANY(%s)",
                            [org_id, tags]).rowcount  # fmt: skip
        conn.execute("DELETE FROM customization_tag WHERE org_id = %s AND id = ANY(%s)", [org_id, tags])
        journal = conn.execute(
            "DELETE FROM contacts_importjournal WHERE org_id = %s AND job_id IN "
            "(SELECT id FROM jobs_job WHERE org_id = %s AND kind = 'bulk')", [org_id, org_id]
        ).rowcount  # fmt: skip
    return {"tags": len(tags), "tag_rows": rows, "journal_rows": journal}


# --- the phase ------------------------------------------------------------------------------------


def run(db: BenchDatabase, server, cast, out_dir: Path) -> dict:
    from bench.server import Client

    org_id = cast.main_org
    results: dict = {"columns": export_columns(), "sample_s": SAMPLE_S, "cleaned": remove_bulk(db, org_id, BULK_TAG)}
    with db.connect() as conn:
        count = conn.execute("SELECT count(*) FROM contacts_contact WHERE org_id = %s", [org_id]).fetchone()[0]
    results["contacts"] = count
    try:
        importbench.settle(db)
        raw = raw_export(db, org_id)
        log(f"COPY (SELECT …) TO STDOUT: {count:,} rows, {raw['bytes'] / MB:.0f} MB in {raw['seconds']:.1f} s")
        api = api_export(server.port, cast.owner.token, org_id, server.proc.pid)
        log(f"POST /contacts/export: {api['status']}, {api['rows']:,} rows, {api['bytes'] / MB:.0f} MB in "
            f"{api['seconds']:.1f} s, gunicorn {api['memory']}")  # fmt: skip
        results["export"] = {"raw": raw, "api": api, "ratio": raw["seconds"] / api["seconds"]}
    except Exception as exc:  # the report still gets written, with what was measured
        results["export"] = {"error": f"{type(exc).__name__}: {exc}"}
    worker = asyncimport.Worker(server.env, out_dir / "worker-bulk.log")
    client = Client(server.port, cast.owner.token, org_id)
    try:
        importbench.settle(db)
        raw = raw_update(db, org_id)
        log(f"raw UPDATE of {raw['rows']:,} rows in {raw['seconds']:.1f} s")
        importbench.settle(db)
        worker.start(db)
        api = api_bulk(client, count, f"{BULK_TAG}-{time.strftime('%H%M%S')}", worker, timeout=max(600, count / 100))
        log(f"bulk add_tags: {api.get('status') or api.get('error')} in {api.get('seconds', 0):.1f} s, "
            f"result {api.get('result')}")  # fmt: skip
        ratio = raw["seconds"] / api["seconds"] if api.get("status") == "succeeded" else None
        results["bulk"] = {"raw": raw, "api": api, "ratio": ratio, "worker_memory": worker.memory()}
    except Exception as exc:
        results["bulk"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        client.close()
        worker.stop()
        results["removed"] = remove_bulk(db, org_id, BULK_TAG)
    return results
