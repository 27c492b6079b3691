"""Real worker processes (`manage.py worker`) against the test database: a worker killed with
SIGKILL in the middle of a 200,000-row async import, and another one finishing it. The org then
holds exactly what a run that was not killed gives (DESIGN §4 Jobs: never half-applied)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from crm.tests.live_gunicorn import REPO, database_url
from jobs.models import Job

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(900)]
ROWS = 200_000
STALLED_SECONDS = 2  # heartbeats every 2/3 s; a worker silent for 2 s is dead


def big_csv() -> bytes:
    """New contacts, rows that merge into earlier rows (across steps), bad rows."""
    lines = ["name,email,phone,company,tags"]
    for i in range(ROWS):
        if i % 1000 == 999:
            lines.append(f"Bad {i},not-an-email-{i},,,")
        elif i % 20 == 19:  # an earlier row's email (often one of an earlier step): merges into it
            lines.append(f",p{i - 10019 if i >= 10019 else i - 19}@example.com,,Company {i},second")
        else:
            lines.append(f"Person {i},p{i}@example.com,+1415555{i % 10000:04d},,first")
    return ("\r\n".join(lines) + "\r\n").encode()


class Worker:
    def __init__(self, log: Path):
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DEBUG": "0",
            "SECRET_KEY": "test-only-secret-key",
            "JOB_STALLED_SECONDS": str(STALLED_SECONDS),
        }
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"], cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def wait_for(condition, timeout: float, what: str, logs: list[Path]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s; logs:\n" + "\n".join(p.read_text()[-3000:] for p in logs))


def resumed_tasks(log: Path) -> list[str]:
    """The task names a worker said it resumed when it started. Besides the job a test cares about,
    a two-slot worker may have been running a periodic task when it was killed."""
    match = re.search(r"Resuming \d+ job\(s\) of workers that stopped: (.*)\.$", log.read_text(), re.MULTILINE)
    return match.group(1).split(", ") if match else []


def job_state(job_id: int) -> tuple[str, int]:
    return Job.objects.filter(pk=job_id).values_list("status", "progress_done").get()


def state_of(org_id: int) -> list[tuple]:
    """Every contact's fields and tag names, read in one statement (not per contact)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.email, c.name, c.phone, c.company, c.notes, "
            "array(SELECT t.name FROM contacts_contacttag ct JOIN customization_tag t "
            "ON t.org_id = ct.org_id AND t.id = ct.tag_id WHERE ct.org_id = c.org_id AND ct.contact_id = c.id "
            "ORDER BY t.name) FROM contacts_contact c WHERE c.org_id = %s ORDER BY c.email",
            [org_id],
        )
        return [tuple(row[:5]) + (tuple(row[5]),) for row in cursor.fetchall()]


def test_a_killed_worker_leaves_nothing_half_applied(alice, charlie, tmp_path):
    started = time.monotonic()
    body = big_csv()
    post = alice.client.generic("POST", "/api/v1/contacts/import?async=true", body, content_type="text/csv")
    assert post.status_code == 202, post.content
    job_id = post.json()["id"]
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]

    first = Worker(logs[0])
    try:
        wait_for(lambda: job_state(job_id)[1] >= 40_000, 300, "the first worker did not commit 40,000 rows", logs[:1])
    finally:
        first.kill()  # mid-way through a step: its transaction dies with it
    killed_at = job_state(job_id)
    assert killed_at[0] == "running" and killed_at[1] < ROWS

    time.sleep(STALLED_SECONDS + 1)  # the dead worker's heartbeat is now stale
    second = Worker(logs[1])
    try:
        wait_for(lambda: job_state(job_id)[0] == "succeeded", 600, "the second worker did not finish", logs)
        clean = charlie.client.generic("POST", "/api/v1/contacts/import?async=true", body, content_type="text/csv")
        wait_for(lambda: job_state(clean.json()["id"])[0] == "succeeded", 600, "the clean run did not finish", logs)
    finally:
        second.stop()

    assert resumed_tasks(logs[1]).count("jobs.run") == 1
    resumed = Job.objects.get(pk=job_id)
    clean_job = Job.objects.get(pk=clean.json()["id"])
    assert resumed.progress_done == resumed.progress_total == ROWS
    assert resumed.result == clean_job.result  # the same counts: no step applied twice, none skipped
    assert resumed.result["failed"] == ROWS // 1000 == resumed.error_count
    killed_state, clean_state = state_of(alice.org.id), state_of(charlie.org.id)
    assert len(killed_state) == ROWS - ROWS // 20  # see big_csv: bad rows and merged rows create none
    assert killed_state == clean_state
    print(f"killed at {killed_at[1]:,} rows; {time.monotonic() - started:.0f} s in all")
