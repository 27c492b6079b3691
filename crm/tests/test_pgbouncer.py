"""RLS through a real PgBouncer in transaction-pooling mode: many concurrent requests for
different orgs share two server connections and never see each other's rows."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections
from knox.models import AuthToken
from rest_framework.test import APIClient

from contacts.models import Contact
from contacts.testing import make_contacts
from crm.tests.live_gunicorn import free_port
from orgs.models import Membership
from orgs.tests.factories import MembershipFactory, OrganizationFactory, UserFactory

PGBOUNCER = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PGBOUNCER is None, reason="pgbouncer is not installed (.ci/run installs Debian's)"),
]


@pytest.fixture
def pgbouncer():
    """Start PgBouncer (pool_mode=transaction, 2 server connections) in front of the test database."""
    connection.ensure_connection()
    db = connection.settings_dict
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="crm-pgbouncer-"))
    folder.chmod(0o777)
    (folder / "users.txt").write_text(f'"{db["USER"]}" ""\n')
    host = db["HOST"] or "127.0.0.1"
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
crm = host={host} port={db.get("PORT") or 5432} dbname={db["NAME"]} user={db["USER"]}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
query_wait_timeout = 30
ignore_startup_parameters = extra_float_digits,options
logfile = {folder}/pgbouncer.log
"""
    )
    for path in folder.iterdir():
        path.chmod(0o666)
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root; run it as whoever may use the server's socket
        command[1:1] = ["-u", _run_as(host)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("PgBouncer did not start: " + process.stderr.read().decode())
    saved = {key: db.get(key) for key in ("HOST", "PORT", "NAME", "OPTIONS")}
    yield port, saved
    process.terminate()
    process.wait(10)
    shutil.rmtree(folder, ignore_errors=True)


def _run_as(host: str) -> str:
    import pwd

    if host.startswith("/"):  # the embedded server's unix socket folder
        return pwd.getpwuid(os.stat(host).st_uid).pw_name
    try:
        return pwd.getpwnam("postgres").pw_name
    except KeyError:
        return "nobody"


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_of_many_orgs_through_pgbouncer_never_mix(pgbouncer, monkeypatch):
    from contacts.models import ContactQuerySet

    # Only the database's wall stands: the application's org scoping is switched off.
    monkeypatch.setattr(ContactQuerySet, "for_member", lambda self, membership: self.all())
    port, saved = pgbouncer
    orgs = []
    for index in range(4):
        org = OrganizationFactory(name=f"Pooled {index}")
        owner = MembershipFactory(
            org=org, user=UserFactory(username=f"owner{index}@pool.test"), role=Membership.Role.OWNER
        )
        _, token = AuthToken.objects.create(user=owner.user)
        make_contacts(org, [{"name": f"org{index}-contact{n}", "search_text": f"org{index}"} for n in range(5 + index)])
        orgs.append((org, token, 5 + index))

    settings_dict = connections.settings["default"]
    # Debian's PgBouncer (1.18) cannot follow prepared statements across server connections:
    # deployments behind it set DB_PREPARED_STATEMENTS=0, which is this (docs/scaling.md).
    options = {**settings_dict["OPTIONS"], "prepare_threshold": None}
    settings_dict.update(HOST="127.0.0.1", PORT=str(port), NAME="crm", OPTIONS=options)
    failures, served = [], []

    def worker(seed: int):
        try:
            for step in range(12):
                org, token, expected = orgs[(seed + step) % len(orgs)]
                client = APIClient()
                client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORG_ID=str(org.id))
                if step % 4 == 3:
                    created = client.post("/api/v1/contacts", {"name": f"{org.name} extra"}, format="json")
                    if created.status_code != 201:
                        failures.append(("create", org.id, created.status_code))
                    continue
                body = client.get("/api/v1/contacts?limit=200").json()
                prefix = f"org{orgs.index((org, token, expected))}-"
                foreign = [
                    c["name"]
                    for c in body["results"]
                    if not (c["name"].startswith(prefix) or c["name"].startswith(org.name))
                ]
                if foreign or body["count"] < expected:
                    failures.append((org.id, body["count"], foreign))
                served.append(org.id)
        except Exception as exc:  # surfaced in the assertion below
            failures.append(repr(exc))
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        settings_dict.update(saved)
        connection.close()
    assert failures == []
    assert len(served) == 8 * 9
    for org, _, expected in orgs:
        assert Contact.objects.filter(org=org).count() == expected + sum(
            1 for n in range(8) for step in range(12) if step % 4 == 3 and orgs[(n + step) % 4][0] == org
        )
