"""gunicorn serving crm_bench, and a keep-alive HTTP client for it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlencode

from bench.db import REPO

# As docs/scaling.md runs it. --reuse-port: each worker listens on its own socket and the kernel
# spreads new connections over them; on one shared socket a keep-alive client's connections
# could all land on one worker (seen: all 8 of wrk's, the other worker idle, half the req/s).
GUNICORN_ARGS = ["-w", "2", "-k", "gthread", "--threads", "2", "--reuse-port", "--timeout", "900", "--keep-alive", "30"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`gunicorn crm.wsgi -w 2` with DEBUG=0 against the bench database."""

    def __init__(self, database_url: str, log_path, extra_args: list[str] | None = None):
        self.port = free_port()
        self.args = [*GUNICORN_ARGS, *(extra_args or [])]
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-not-for-production",
            "CONN_MAX_AGE": "600",
            "BROWSABLE_API": "0",
            "WEBHOOK_ALLOW_PRIVATE": "1",  # the feed phase's receiver is on 127.0.0.1
        }
        self.log_path = log_path
        self.proc = None

    @property
    def command(self) -> str:
        return " ".join(["gunicorn", "crm.wsgi", *self.args, "-b", f"127.0.0.1:{self.port}"])

    def start(self, token: str, org_id: int) -> None:
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "crm.wsgi", *self.args, "-b", f"127.0.0.1:{self.port}"],
            cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = Client(self.port, token, org_id)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
            try:
                status, body, _ = client.call("GET", "/api/v1/org")
                if status not in (200, 502, 503):
                    raise RuntimeError(f"gunicorn answered {status}: {body}")
                if status == 200:
                    client.close()
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"gunicorn did not answer within 60 s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


class Client:
    """One keep-alive connection (http.client), re-opened if the server closes it.

    Given several tokens of one user it takes them in turn: the per-token rate limits
    (crm/api/throttling.py) stay on and are measured, but a benchmark is not one client.
    """

    def __init__(self, port: int, tokens: str | list[str], org_id: int, timeout: float = 900):
        self.port, self.timeout = port, timeout
        self.tokens = [tokens] if isinstance(tokens, str) else list(tokens)
        self.calls = 0
        self.headers = {"X-Org-Id": str(org_id), "Accept": "application/json"}
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method: str, path: str, body=None, params: dict | None = None, content_type="application/json"):
        """(status, parsed JSON or None, seconds)."""
        if params:
            path = f"{path}?{urlencode(params, doseq=True)}"
        headers = {**self.headers, "Authorization": f"Bearer {self.tokens[self.calls % len(self.tokens)]}"}
        self.calls += 1
        payload = None
        if body is not None:
            payload = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in (0, 1):
            try:
                started = time.perf_counter()
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                elapsed = time.perf_counter() - started
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return response.status, parsed, elapsed

    def close(self) -> None:
        self.conn.close()
