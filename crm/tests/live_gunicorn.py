"""A real gunicorn, started with the repository's gunicorn.conf.py, serving the test database.

For what only a real server shows: headers gunicorn maps into the WSGI environ, slow clients,
connection limits. The `live_gunicorn` fixture (crm/tests/conftest.py) starts them; tests that
use it run with `transactional_db`, so the server sees their rows.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The test database, as DATABASE_URL for another process (socket folder or host)."""
    connection.ensure_connection()
    info = connection.connection.info
    return f"postgres://{quote(info.user)}@{quote(info.host, safe='')}:{info.port}/{quote(info.dbname)}"


class LiveGunicorn:
    def __init__(self, log_path: Path, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "DEBUG": "0",
            "SECRET_KEY": "test-only-secret-key",
            "CONN_MAX_AGE": "0",
            "BROWSABLE_API": "0",
            "WEB_CONCURRENCY": "1",
            **(env or {}),
        }
        self.args = args
        self.process = None

    def start(self) -> LiveGunicorn:
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "crm.wsgi", "-b", f"127.0.0.1:{self.port}", *self.args],
            cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log_path.read_text()}")
            try:
                self.request("GET", "/api/v1/schema/")  # any answer: the server is up
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within 60 s: {self.log_path.read_text()}")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            # A server refusing a body (413) answers and closes before reading it all: the answer
            # is there to read though the rest of the body could not be sent.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
