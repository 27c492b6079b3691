"""The embedded PostgreSQL after a crash, with real processes: a holder killed with -9 must not keep
the server running forever, a `postmaster.pid` whose pid now names an unrelated process must not
stop the next start, and `stop` / `clean` (make stop, make clean-db) do what they say."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from crm import embedded_db

ROOT = Path(__file__).resolve().parents[2]

# SIGINT restored: a process started in the background by a non-interactive shell (as CI may run
# the suite) inherits it ignored, and Ctrl-C of `make run` comes from a terminal.
HOLD = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from crm import embedded_db
embedded_db.start(sys.argv[1])
print("up", flush=True)
time.sleep(float(sys.argv[2]))
"""

QUERY = """
import sys, psycopg
from crm import embedded_db
socket_dir = embedded_db.start(sys.argv[1])
with psycopg.connect(host=socket_dir, user=embedded_db.OWNER, dbname=embedded_db.DATABASE) as conn:
    print(conn.execute("SELECT 40 + 2").fetchone()[0])
"""


def python(code: str, *args: str, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def holder(data: Path, seconds: float = 120) -> subprocess.Popen:
    """A process that started the server and keeps using it."""
    process = python(HOLD, str(data), str(seconds))
    line = process.stdout.readline()
    assert line.strip() == "up", process.stderr.read()
    return process


def run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crm.embedded_db", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def gone(pid: int, within: float = 20) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def data():
    # Not under pytest's tmp_path: pytest keeps its root 0700, which the server's own user (when the
    # tests run as root) could not traverse; crm.settings_test's folder is made the same way.
    root = Path(tempfile.mkdtemp(prefix="crm-test-embedded-"))
    yield root / "pg"
    embedded_db.stop(root / "pg")  # whatever a failed test left running
    shutil.rmtree(root, ignore_errors=True)


def test_a_holder_killed_with_9_does_not_keep_the_server_running(data):
    first = holder(data)
    server = embedded_db.running_pid(data.resolve())
    assert server is not None
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.pid in embedded_db._read_json(data / embedded_db.HANDLES, [])  # what the package left

    second = run(QUERY, str(data))  # starts (joins), queries, exits normally: the last user
    assert second.returncode == 0 and second.stdout.strip() == "42", second.stderr
    assert gone(server), "the server outlived its last user"
    assert embedded_db.running_pid(data.resolve()) is None


def test_a_stale_postmaster_pid_naming_an_unrelated_live_process_does_not_stop_the_next_start(data):
    first = holder(data)
    path = data.resolve()
    server = psutil.Process(embedded_db.running_pid(path))
    info = embedded_db.postmaster(path)
    # A crash of everything (a reboot, the OOM killer): the server and its holder die at once.
    for process in [first, *server.children(recursive=True), server]:
        with contextlib.suppress(ProcessLookupError):  # a backend may have ended meanwhile
            os.kill(process.pid, signal.SIGKILL)
    first.wait()
    assert gone(server.pid)
    # After the reboot the server's old pid belongs to someone else.
    unrelated = subprocess.Popen(["sleep", "300"])
    try:
        lock_files = [path / "postmaster.pid", Path(info.socket_dir) / f".s.PGSQL.{info.port}.lock"]
        for lock_file in lock_files:
            if lock_file.exists():
                lines = lock_file.read_text().split("\n")
                lock_file.write_text("\n".join([str(unrelated.pid), *lines[1:]]))
        assert (path / "postmaster.pid").exists()

        again = run(QUERY, str(data))
        assert again.returncode == 0 and again.stdout.strip() == "42", again.stderr[-3000:]
        assert unrelated.poll() is None  # left alone
        assert embedded_db.running_pid(path) is None  # and the server stopped with its last user
    finally:
        unrelated.kill()
        unrelated.wait()


def test_stop_stops_it_under_a_holder_and_clean_refuses_until_then(data):
    first = holder(data)
    path = data.resolve()
    server = embedded_db.running_pid(path)

    refused = cli("clean", "--data", str(data))
    assert refused.returncode == 1 and "is running" in refused.stderr and "make stop" in refused.stderr
    assert (data / "PG_VERSION").exists()
    assert cli("status", "--data", str(data)).returncode == 0

    stopped = cli("stop", "--data", str(data))
    assert stopped.returncode == 0 and f"pid {server}" in stopped.stdout
    assert gone(server) and embedded_db.running_pid(path) is None
    assert cli("status", "--data", str(data)).returncode == 3

    first.send_signal(signal.SIGTERM)  # the holder exits cleanly: the server is no longer its to stop
    assert first.wait(timeout=120) == 0
    assert cli("stop", "--data", str(data)).stdout.startswith("not running")

    cleaned = cli("clean", "--data", str(data))
    assert cleaned.returncode == 0 and not data.exists()


def test_ctrl_c_of_the_last_user_stops_the_server(data):
    first = holder(data)
    server = embedded_db.running_pid(data.resolve())
    first.send_signal(signal.SIGINT)  # what Ctrl-C of `make run` sends to each of its processes
    first.wait(timeout=120)
    assert gone(server)


def test_stop_if_unused_leaves_a_used_server_and_stops_one_whose_users_were_killed(data):
    first = holder(data)
    server = embedded_db.running_pid(data.resolve())
    kept = cli("stop", "--if-unused", "--data", str(data))
    assert kept.stdout.startswith(f"still used by [{first.pid}]") and embedded_db.running_pid(data.resolve()) == server
    first.send_signal(signal.SIGKILL)  # as Django's autoreloader does to its server process on Ctrl-C
    first.wait()
    assert cli("stop", "--if-unused", "--data", str(data)).stdout.startswith("stopped")
    assert gone(server)
