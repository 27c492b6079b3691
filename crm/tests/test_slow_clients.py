"""Slow clients (issue 16, finding 8): the documented production set-up, deploy/nginx.conf in
front of gunicorn.conf.py, keeps answering while clients trickle their headers and bodies, and a
trickling body never holds a PostgreSQL transaction open."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from crm.tests.live_gunicorn import REPO, free_port

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
pytestmark = pytest.mark.slow


@pytest.fixture
def nginx_in_front(live_gunicorn):
    """The shipped deploy/nginx.conf, its ports changed, in front of a one-worker gunicorn."""
    if NGINX is None:
        pytest.skip("nginx is not installed (.ci/run installs Debian's)")
    server = live_gunicorn({"FORWARDED_ALLOW_IPS": "127.0.0.1", "NUM_PROXIES": "1", "WEB_CONCURRENCY": "1"})
    port = free_port()
    site = (REPO / "deploy" / "nginx.conf").read_text()
    assert "listen 80;" in site and "server 127.0.0.1:8000;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};").replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
    folder = Path(tempfile.mkdtemp(prefix="crm-nginx-"))
    folder.chmod(0o777)  # nginx's workers drop root for nobody: they write their temp files here
    temp = " ".join(
        f"{kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (folder / "site.conf").write_text(site)
    (folder / "nginx.conf").write_text(
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nworker_processes 1;\n"
        f"events {{ worker_connections 512; }}\nhttp {{ access_log off; {temp} include {folder}/site.conf; }}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    for _ in range(50):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("nginx did not start: " + process.stderr.read().decode())
    yield port
    process.terminate()
    process.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


def trickle(port: int, head: bytes, body: bytes, stop: threading.Event, interval: float = 0.5) -> None:
    """Send `head` whole, then `body` one byte every `interval` seconds, until `stop`."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        for byte in body:
            if stop.wait(interval):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return


def probe(port: int, actor) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(
            "GET", "/api/v1/org", headers={"Authorization": f"Bearer {actor.token}", "X-Org-Id": str(actor.org.id)}
        )
        return conn.getresponse().status
    except OSError:
        return 0
    finally:
        conn.close()


def idle_in_transaction() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_behind_nginx_slow_headers_and_bodies_do_not_starve_other_clients(nginx_in_front, alice):
    port, stop = nginx_in_front, threading.Event()
    slow_head = b"GET /api/v1/org HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + b"x" * 40 + b"\r\n\r\n"
    body = b'{"name": "' + b"x" * 60 + b'"}'
    head_of_slow_body = (
        f"POST /api/v1/contacts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {alice.token}\r\n"
        f"X-Org-Id: {alice.org.id}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    clients = [threading.Thread(target=trickle, args=(port, b"", slow_head, stop)) for _ in range(16)]
    clients += [threading.Thread(target=trickle, args=(port, head_of_slow_body, body, stop)) for _ in range(8)]
    for client in clients:
        client.start()
    try:
        time.sleep(1.5)  # every slow client is connected and trickling
        statuses = []
        for _ in range(7):
            statuses.append(probe(port, alice))
            assert idle_in_transaction() == 0
            time.sleep(0.3)
    finally:
        stop.set()
        for client in clients:
            client.join(10)
    assert statuses == [200] * 7


@pytest.mark.django_db(transaction=True)
def test_a_trickling_body_holds_no_database_transaction(live_gunicorn, alice):
    server, stop = live_gunicorn(), threading.Event()
    body = b'{"name": "Slow"}'
    head = (
        f"POST /api/v1/contacts HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {alice.token}\r\n"
        f"X-Org-Id: {alice.org.id}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    client = threading.Thread(target=trickle, args=(server.port, head, body, stop, 0.2))
    client.start()
    try:
        samples = []
        for _ in range(10):
            samples.append(idle_in_transaction())
            time.sleep(0.2)
    finally:
        stop.set()
        client.join(10)
    assert samples == [0] * 10
