"""One POST to a checked target (webhooks.targets), to the address that was checked.

urllib3 connects to `target.address` and speaks to `target.host`: the Host header, and for HTTPS
the TLS server name (SNI) and the certificate's host name, through its documented
`server_hostname` / `assert_hostname` parameters. The name is never resolved again between the
check and the connection, so a DNS answer that changes in between cannot send the request inside.
Redirects are not followed (a 3xx is a failed attempt): one could point anywhere. No proxy from the
environment is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import urllib3

from webhooks.targets import Target

ERROR_BODY_CHARS = 200  # of a refusing receiver's answer, kept in the delivery's `error`


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the receiver's HTTP status; None when no answer came
    latency_ms: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float, ca_certs: str | None = None) -> Outcome:
    """POST `body` to `target` (`ca_certs`: a PEM bundle of trusted CAs, else the system's); never
    raises for what the network or the receiver does."""
    started = time.monotonic()
    try:
        with _pool(target, timeout, ca_certs) as pool:
            response = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": target.host_header},
                redirect=False,
                retries=False,
                preload_content=False,
                assert_same_host=False,
            )
            try:
                answer = response.read(ERROR_BODY_CHARS * 4, decode_content=False)
            finally:
                response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return Outcome(None, _ms(started), _describe(exc))
    latency = _ms(started)
    if 200 <= response.status < 300:
        return Outcome(response.status, latency)
    text = answer.decode("utf-8", "replace")[:ERROR_BODY_CHARS].strip()
    return Outcome(response.status, latency, f"HTTP {response.status}" + (f": {text}" if text else ""))


def _pool(target: Target, timeout: float, ca_certs: str | None) -> urllib3.HTTPConnectionPool:
    options = {"timeout": urllib3.Timeout(connect=timeout, read=timeout, total=timeout), "maxsize": 1}
    if target.scheme == "http":
        return urllib3.HTTPConnectionPool(str(target.address), target.port, **options)
    return urllib3.HTTPSConnectionPool(
        str(target.address),
        target.port,
        cert_reqs="CERT_REQUIRED",
        ca_certs=ca_certs,
        server_hostname=target.host,
        assert_hostname=target.host,
        **options,
    )


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _describe(exc: Exception) -> str:
    """A short reason: the innermost cause urllib3 wraps (refused, timed out, TLS)."""
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}"[:500]
