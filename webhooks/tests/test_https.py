"""HTTPS targets: the delivery connects to the address it checked and speaks TLS to the URL's host name
(SNI, certificate check), so the name is never resolved again after the check. A receiver on
127.0.0.1 with a certificate made by `openssl` for its name stands in for the real one."""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess

import pytest

from webhooks import delivery, targets
from webhooks.models import Delivery
from webhooks.tests.conftest import Receiver, create_webhook
from webhooks.tests.test_delivery import make_changes

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("allow_private"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


def certificate(tmp_path, name: str) -> tuple[str, str]:
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
         "-out", str(cert), "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(cert), str(key)


@pytest.fixture
def tls_receiver(tmp_path, settings, monkeypatch):
    """An HTTPS receiver whose certificate names `receiver.test`, which resolves to 127.0.0.1 (trusted
    through WEBHOOK_CA_BUNDLE); `other.test` resolves there too."""
    cert, key = certificate(tmp_path, "receiver.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    settings.WEBHOOK_CA_BUNDLE = cert
    loopback = [ipaddress.ip_address("127.0.0.1")]
    monkeypatch.setattr(targets, "resolve", lambda host, port: loopback if host.endswith(".test") else [])
    server = Receiver(tls=context)
    yield server
    server.down()


def test_https_goes_to_the_checked_address_with_the_hosts_name(alice, tls_receiver):
    webhook = create_webhook(alice, tls_receiver, url=tls_receiver.url(host="receiver.test"))
    make_changes(alice, 2)
    delivery.run(alice.org.id, webhook["id"], seconds=20)
    (request,) = tls_receiver.requests()
    assert request.payload is not None and len(request.payload["data"]) == 2
    assert tls_receiver.server_names == ["receiver.test"]
    assert request.headers["Host"] == f"receiver.test:{tls_receiver.port}"


def test_a_certificate_for_another_name_fails_the_attempt(alice, tls_receiver):
    webhook = create_webhook(alice, tls_receiver, url=tls_receiver.url(host="other.test"))
    make_changes(alice, 1)
    delivery.run(alice.org.id, webhook["id"], seconds=20)
    assert tls_receiver.requests() == []
    failed = Delivery.objects.get(webhook_id=webhook["id"])
    assert failed.status == Delivery.Status.RETRYING and failed.response_code is None
    assert "certificate" in failed.error.lower() or "hostname" in failed.error.lower(), failed.error
