"""A real webhook receiver for the tests: an HTTP server on 127.0.0.1 in a thread, which checks every
request's signature with the `standardwebhooks` library, as an integrator would, and records it."""

from __future__ import annotations

import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import standardwebhooks


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    payload: dict | None  # verified and parsed; None when the signature did not verify
    answered: int


class Handler(BaseHTTPRequestHandler):
    server: Server

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver = self.server.receiver
        received = receiver.record(self.path, dict(self.headers.items()), body)
        if receiver.hold is not None:  # a request kept waiting (a worker is killed meanwhile)
            receiver.held.set()
            receiver.hold.wait(60)
        self.send_response(received.answered)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"ok" if received.answered < 300 else b"receiver says no")

    def log_message(self, format, *args):  # quiet
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    receiver: Receiver


class Receiver:
    """`status`: what it answers; `down()` / `up()`: connections refused, then served again on the
    same port; `hold`: an Event that keeps each request waiting until set (with `held` set on arrival)."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.tls = tls
        self.server_names: list[str | None] = []  # the TLS server name (SNI) of each handshake
        self.secrets: dict[str, str] = {}  # path -> the webhook's secret
        self.received: list[Received] = []
        self.status = 200
        self.script: list[int] = []  # statuses to answer first, in order, before `status`
        self.hold: threading.Event | None = None
        self.held = threading.Event()
        self.lock = threading.Lock()
        self.port = 0
        self.server: Server | None = None
        self.up()

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def up(self) -> None:
        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.receiver = self
        if self.tls is not None:
            self.tls.sni_callback = lambda sock, name, context: self.server_names.append(name)
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def record(self, path: str, headers: dict[str, str], body: bytes) -> Received:
        try:
            payload = standardwebhooks.Webhook(self.secrets[path]).verify(body, headers)
        except (KeyError, standardwebhooks.webhooks.WebhookVerificationError):
            payload = None
        with self.lock:
            status = self.script.pop(0) if self.script else self.status
            received = Received(path, headers, body, payload, status if payload is not None else 401)
            self.received.append(received)
        return received

    def requests(self, path: str = "/hook") -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def entries(self, path: str = "/hook", dedupe: bool = True) -> list[dict]:
        """The entries delivered with a 2xx answer, in arrival order (each `webhook-id` once)."""
        seen, entries = set(), []
        for request in self.requests(path):
            message_id = request.headers.get("webhook-id")
            if request.answered >= 300 or (dedupe and message_id in seen):
                continue
            seen.add(message_id)
            entries += request.payload["data"]
        return entries


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    if server.hold is not None:
        server.hold.set()
    server.down()


@pytest.fixture
def allow_private(settings):
    """The receiver is on 127.0.0.1 (loopback), as WEBHOOK_ALLOW_PRIVATE=1 allows (never link-local)."""
    settings.WEBHOOK_ALLOW_PRIVATE = True


def create_webhook(actor, receiver: Receiver, path: str = "/hook", **body) -> dict:
    """POST /webhooks for `receiver` at `path`; the secret (answered once) is given to the receiver."""
    body = {"url": receiver.url(path), "events": ["*"], **body}
    response = actor.client.post("/api/v1/webhooks", body, format="json")
    assert response.status_code == 201, response.content
    webhook = response.json()
    receiver.secrets[path] = webhook["secret"]
    return webhook


def pretty(value) -> str:
    return json.dumps(value, indent=1)[:3000]
