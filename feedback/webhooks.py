"""Webhooks on poll answers, as pure rules: how a body is signed and verified, when a failed delivery is tried
again, and which URLs a webhook may point at.

Signing follows Stripe's scheme, which most receivers already know: the header

    Feedloop-Signature: t=1767268800,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

carries the Unix time of the attempt and the hex HMAC-SHA256, keyed with the webhook's secret (the whole
`whsec_…` string, as UTF-8), of `f"{t}.".encode() + body` where body is the exact bytes received. Each attempt is
signed afresh, so a retry carries a new `t`. A receiver recomputes the HMAC over the raw body (before parsing
JSON), compares in constant time, and refuses a `t` more than a few minutes away from its clock, so a captured
request cannot be replayed later; the body's `id` stays the same across retries, so a receiver that keeps the
ids it has handled also ignores a retry of a delivery it has already processed. `verify` below does all that
with the standard library alone: receivers may copy it.

The URL policy is pure too: the caller resolves the host and passes the addresses in, so that the rule is
tested without DNS, and so that the sender connects to the very address that was checked (DNS rebinding).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

SIGNATURE_HEADER = "Feedloop-Signature"
FIRST_RETRY_SECONDS = 10.0
MAX_RETRY_SECONDS = 6 * 3600.0
MAX_URL_LENGTH = 2048


# --- signing -------------------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `{timestamp}.{body}` keyed with the secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers that sign one attempt."""
    return {SIGNATURE_HEADER: f"t={timestamp},v1={signature(secret, timestamp, body)}"}


class InvalidSignature(ValueError):
    pass


def verify(header: str, body: bytes, secret: str, tolerance: int = 300, now: float | None = None) -> int:
    """Check a Feedloop-Signature header against the raw request body; returns the signed timestamp or raises
    InvalidSignature. For receivers (copy it: it needs hashlib, hmac and time only). The tolerance, Stripe's
    default, is wide enough for clock skew and narrow enough against replays."""
    timestamp, candidates = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignature("the header has no t=<timestamp> or no v1=<signature>")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        raise InvalidSignature(f"the timestamp is {now - timestamp:.0f} s away from now (tolerance {tolerance} s)")
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise InvalidSignature("no signature matches the body")
    return timestamp


# --- retries -------------------------------------------------------------------------------------------------


def retry_delay(attempts: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the `attempts`-th failed attempt: 10 s doubling up to six hours, with "equal
    jitter" (half the delay fixed, half random) so that deliveries that failed together do not retry together."""
    delay = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** min(attempts - 1, 32))
    return delay / 2 + rand() * delay / 2


def next_retry(attempts: int, max_attempts: int, rand: Callable[[], float] = random.random) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones, or None when it is time to give up."""
    return None if attempts >= max_attempts else retry_delay(attempts, rand)


# --- where a webhook may point -------------------------------------------------------------------------------


class UrlRefused(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    scheme: str  # http or https
    host: str  # a lower-case name or an address (IPv6 without brackets)
    port: int
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == {"http": 80, "https": 443}[self.scheme] else f"{host}:{self.port}"


def parse_url(url: str) -> Target:
    """The parts of a webhook URL to resolve and connect to, or UrlRefused: http(s) only, a host, no
    credentials (they would travel in every request and show on the admin page)."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UrlRefused("the URL contains spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused("only http:// and https:// URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not allowed (the body is signed instead)")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    try:
        port = parts.port or {"http": 80, "https": 443}[scheme]
    except ValueError:
        raise UrlRefused("the URL's port is not a number from 1 to 65535") from None
    try:
        host = parts.hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlRefused("the URL's host is not a valid name") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host.rstrip("."), port, path)


# Never, whatever the admin allows: nobody needs poll answers posted to a cloud's instance metadata service, and
# one mistaken URL there hands out the host's credentials.
METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def refused_address(address: str, allow_private: bool = False) -> str | None:
    """Why a webhook may not connect to `address`, or None when it may. Only globally routable unicast addresses
    pass, unless `allow_private` (then loopback, private, unique-local, link-local and shared ones pass too);
    IPv6 forms that carry an IPv4 address (mapped, 6to4, Teredo, NAT64) are judged by that IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = refused_address(str(embedded), allow_private)
            return reason and f"{address} carries {embedded}: {reason}"
    if ip in METADATA:
        return f"{ip} is a cloud metadata address"
    if ip.is_unspecified or ip.is_multicast or ip == BROADCAST:
        return f"{ip} is an unspecified, multicast or broadcast address, not a receiver"
    site_local = getattr(ip, "is_site_local", False)  # fec0::/10: deprecated, yet private in effect
    if allow_private or (ip.is_global and not site_local):
        return None
    kinds = (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private or site_local),
    )
    kind = next((name for name, flag in kinds if flag), "non-public")
    return f"{ip} is a {kind} address (allowed only when the webhook allows private addresses)"


def check_url(url: str, addresses: Iterable[str], allow_private: bool = False) -> Target:
    """The target of `url` when every address its host resolved to may be used, or UrlRefused. One refused
    address refuses the URL: a name that resolves to a public and a private address is not trusted."""
    target = parse_url(url)
    addresses = list(addresses)
    if not addresses:
        raise UrlRefused(f"the host {target.host} does not resolve")
    for address in addresses:
        reason = refused_address(address, allow_private)
        if reason:
            raise UrlRefused(reason)
    return target
