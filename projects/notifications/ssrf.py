"""Server-side request forgery guard for notification destinations.

A destination URL is checked when it is saved and again before every request, after
name resolution: every address the host resolves to must be public. The request then
connects to the address that was checked (``projects.notifications.transports`` pins it), so a name
that resolves differently a moment later (DNS rebinding) cannot reach an inner address.

Refused: loopback, private (RFC 1918, unique local), link-local, carrier-grade NAT
(100.64.0.0/10), multicast, unspecified, reserved and documentation ranges, cloud
metadata (169.254.169.254, fd00:ec2::254), and IPv6 forms that embed one of those
(IPv4-mapped, IPv4-compatible, NAT64, 6to4). Decimal, octal and hex IPv4 spellings
(``2130706433``, ``0177.0.0.1``, ``0x7f.1``) are read the way the C resolver reads them,
so they are refused as the address they mean.

Local receivers (a mail catcher or a test receiver on a staging stack) are allowed one by
one: ``HITL_WEBHOOKS_ALLOW_HOSTS`` lists exact ``host:port`` pairs, and only a URL naming
one of them (the same host spelling and port) may resolve to a loopback or private
address, and only it may use plain http for Slack. Every other URL, including another
port on the same host, is checked as above. Metadata, link-local, multicast and
unspecified addresses stay refused even for a listed pair.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from hitl.exceptions import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FORBIDDEN_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
        "100::/64",
        "2001:db8::/32",
        "fd00:ec2::254/128",
    )
)
_METADATA = (ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"))
# What a listed local receiver may resolve to, besides loopback: RFC 1918 and unique local.
_LOCAL_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")


class UnsafeDestination(DomainError):
    """The URL may not be called: its address is not public, or it cannot be resolved."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unsafe_destination", details={"url": [message]})


class Unresolvable(UnsafeDestination):
    """The host does not resolve (now): worth another try later."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (``address``) and what to ask for."""

    scheme: str
    host: str  # the name, for the Host header and TLS (SNI and certificate check)
    port: int
    address: str  # the resolved, checked address the request connects to
    path: str  # path and query

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress, *, allow_local: bool = False) -> str | None:
    """Why a request must not go to ``ip``, or None if it may. ``allow_local``: the URL
    names a listed local receiver, so loopback and private addresses may be used."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = address_refusal(embedded, allow_local=allow_local)
        return f"{reason} (embedded in {ip})" if reason else None
    if ip in _METADATA:
        return f"{ip} is a cloud metadata address"
    if ip.is_loopback:
        return None if allow_local else f"{ip} is a loopback address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if ip in ipaddress.ip_network("100.64.0.0/10"):
        return f"{ip} is a carrier-grade NAT address"
    if allow_local and any(ip in net for net in _LOCAL_NETWORKS):
        return None
    if ip.is_private or not ip.is_global or any(ip in net for net in _FORBIDDEN_NETWORKS):
        return f"{ip} is a private or reserved address"
    return None


def _is_local(ip: IPAddress) -> bool:
    """Loopback or private: what a listed local receiver may resolve to."""
    inner = _embedded_ipv4(ip) or ip
    return inner.is_loopback or any(inner in net for net in _LOCAL_NETWORKS)


def parse_host_port(entry: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:8025`` for IPv6) as the pair a URL is compared with: the
    host lower-cased without brackets, the port a number."""
    text = entry.strip()
    try:
        parts = urlsplit(f"//{text}")
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None or parts.path or parts.username or parts.password:
        raise ImproperlyConfigured(
            f"HITL_WEBHOOKS_ALLOW_HOSTS: {entry!r} is not host:port (e.g. 127.0.0.1:8025)"
        )
    return host, port


def allowed_local_receivers() -> frozenset[tuple[str, int]]:
    """The ``(host, port)`` pairs of ``HITL_WEBHOOKS_ALLOW_HOSTS`` (a list, or one
    comma-separated string)."""
    raw = settings.HITL_WEBHOOKS_ALLOW_HOSTS
    entries = raw.split(",") if isinstance(raw, str) else raw
    return _parse_allow_list(tuple(e.strip() for e in entries if e.strip()))


@functools.lru_cache(maxsize=8)
def _parse_allow_list(entries: tuple[str, ...]) -> frozenset[tuple[str, int]]:
    return frozenset(parse_host_port(entry) for entry in entries)


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as exc:
        raise UnsafeDestination(f"Not a valid URL: {exc}.") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeDestination("The URL must start with https:// or http://.")
    if not parts.hostname:
        raise UnsafeDestination("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("The URL may not carry a user name or password.")
    return parts


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (as the C resolver reads it, so ``0x7f.1`` is
    127.0.0.1)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"The host {host!r} does not resolve ({exc}).") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise Unresolvable(f"The host {host!r} does not resolve.")
    return addresses


def check_url(url: str, *, kind: str = "webhook") -> Target:
    """Resolves ``url``'s host and refuses it unless every address is allowed; returns
    the target to connect to (the first address). Called at save and before every send."""
    parts = _split(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    listed = (host, port) in allowed_local_receivers()
    # Slack is https only; plain http to a listed local receiver is for tests and staging.
    if kind == "slack" and parts.scheme != "https" and not listed:
        raise UnsafeDestination("The URL must start with https://.")
    addresses = resolve(host, port)
    for ip in addresses:
        reason = address_refusal(ip, allow_local=listed)
        if reason and _is_local(ip):
            raise UnsafeDestination(
                f"The URL's host {host!r} resolves to a refused address ({reason}), and "
                f"{host}:{port} is not a local receiver this server allows."
            )
        if reason:
            raise UnsafeDestination(
                f"The URL's host {host!r} resolves to a refused address ({reason})."
            )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=parts.scheme, host=host, port=port, address=str(addresses[0]), path=path)
