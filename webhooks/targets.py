"""Where a webhook may send (DESIGN §4): a public address, never one inside the service's network.

A target URL is checked twice: when the webhook is created or its URL changed (an InvalidInput for
the API), and at every delivery, against what the name resolves to then (a name that resolved to
a public address at creation may point inside later: DNS rebinding). The delivery then connects to
the very address it checked (webhooks.transport), never resolving the name a second time.

Refused: private, loopback, shared, reserved, multicast and unspecified addresses, unless
WEBHOOK_ALLOW_PRIVATE=1, which allows private and loopback ones (tests, development); link-local
addresses (169.254.0.0/16, fe80::/10: where cloud metadata endpoints answer) always, whatever
the setting. IPv6 forms that carry an IPv4 address (mapped, 6to4, NAT64) are judged as that address.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from crm.errors import FieldError, InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Metadata endpoints outside the link-local ranges (AWS's IPv6 one is a unique-local address).
METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254")})
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are an IPv4 address


class RefusedTarget(Exception):
    """The URL cannot be a webhook's target (now); `code` and `detail` say why."""

    def __init__(self, code: str, detail: str):
        self.code, self.detail = code, detail
        super().__init__(detail)


@dataclass(frozen=True)
class Target:
    """A checked target: connect to `address`, speak to `host` (Host header, TLS name)."""

    scheme: str
    host: str  # ASCII (IDNA) form
    port: int
    path: str  # path and query, as sent on the request line
    address: IPAddress

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses `host` resolves to (an IP literal: itself). Tests replace this function."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise RefusedTarget("unresolvable", f"The host {host!r} does not resolve ({why}).") from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def refusal(address: IPAddress, allow_private: bool) -> tuple[str, str] | None:
    """(code, why) a connection to `address` is refused, or None when it is allowed."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return refusal(embedded, allow_private)
    if address.is_link_local or address in METADATA:
        return "link_local_address", "a link-local address (where cloud metadata endpoints answer), never allowed"
    if address.is_multicast or address.is_unspecified or (address.is_reserved and not address.is_private):
        return "not_unicast_address", "not a unicast address"
    if address.is_global:
        return None
    if allow_private and (address.is_private or address.is_loopback):
        return None
    return "private_address", "a private or loopback address, allowed only with WEBHOOK_ALLOW_PRIVATE=1"


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.ipv4_mapped or address.sixtofour


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, ASCII host, port, path and query) of an http(s) URL; RefusedTarget otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedTarget("invalid_url", f"Not a valid URL: {exc}.")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise RefusedTarget("invalid_url", "Expected an absolute https:// (or http://) URL with a host name.")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("invalid_url", "Credentials in the URL are not supported: verify the signature instead.")
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise RefusedTarget("invalid_url", f"{parts.hostname!r} is not a valid host name.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def check(url: str, allow_private: bool | None = None) -> Target:
    """The target of `url`, resolved now, with the address to connect to; RefusedTarget when the
    URL is malformed, its host does not resolve, or any address it resolves to is refused."""
    allow = settings.WEBHOOK_ALLOW_PRIVATE if allow_private is None else allow_private
    scheme, host, port, path = parse(url)
    addresses = resolve(host, port)
    if not addresses:
        raise RefusedTarget("unresolvable", f"The host {host!r} does not resolve.")
    for address in addresses:  # every one: the connection could have gone to any of them
        refused = refusal(address, allow)
        if refused is not None:
            shown = host if host == str(address) else f"{host} resolves to {address}"
            raise RefusedTarget(refused[0], f"Refused target: {shown}, {refused[1]}.")
    return Target(scheme, host, port, path, addresses[0])


def validate_url(url: str, attr: str = "url") -> str:
    """For the API and the admin: the URL if it may be a target now, else InvalidInput naming `attr`."""
    try:
        check(url)
    except RefusedTarget as exc:
        raise InvalidInput([FieldError(attr, exc.code, exc.detail)]) from None
    return url
