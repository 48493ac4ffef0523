"""Safe outbound connections to user-supplied URLs (webhooks, sources' S3 endpoints), guarded against SSRF.

A URL is checked twice: when it is saved (`check_url`) and again when it is used, because DNS answers
can change in between. For webhooks `post` connects to exactly the addresses it checked (no second DNS
lookup) so a rebinding DNS server cannot swap in an internal address after the check. The executor
checks an S3 endpoint with `check_url` right before boto3 or Spark connect to it (they resolve it again).
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

MAX_RESPONSE_BODY = 4096

# Names that reach cloud metadata services without going through public DNS.
_METADATA_HOSTNAMES = frozenset({"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"})

# A host whose last label is a number is an IPv4 address to getaddrinfo and to URL parsers, which also read
# 2130706433, 0x7f.1, 0177.0.0.1 and 127.1; other clients (the JVM) read some of these as other addresses.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*", re.IGNORECASE)

# Cloud metadata services hand out credentials. A range in the allowlist (e.g. fd00::/8 for
# internal ULA hosts) does not open them; only an entry naming exactly that address does.
_METADATA_ADDRESSES = tuple(
    ipaddress.ip_network(n)
    for n in (
        "169.254.169.254/32",  # AWS, GCP, Azure, OCI
        "fd00:ec2::254/128",  # AWS over IPv6
        "100.100.100.200/32",  # Alibaba Cloud
    )
)

# Refused unless allowlisted; the first match gives the reason. Anything else that Python does not
# consider globally reachable is refused by the fallback in `AddressPolicy.refusal`.
_BLOCKED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(network), label)
    for network, label in (
        ("169.254.169.254/32", "a link-local (cloud metadata) address"),
        ("fd00:ec2::254/128", "a private (cloud metadata) address"),
        ("0.0.0.0/8", "an unspecified address"),  # 0.0.0.0 reaches the local host on Linux
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),  # includes the broadcast address
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("fc00::/7", "a private address"),
        ("ff00::/8", "a multicast address"),
    )
)

# IPv6 prefixes that carry an IPv4 address in their last 32 bits and may be translated to it.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class OutboundRefused(Exception):
    """The URL or one of the addresses it resolves to is not allowed by the policy."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutboundError(Exception):
    """The request could not be completed (connection refused, timeout, TLS or protocol error)."""


@dataclass(frozen=True)
class AllowedRange:
    network: Network
    port: int | None = None  # None: any port


@dataclass(frozen=True)
class AddressPolicy:
    """Which destination addresses are acceptable: public ones, plus whatever is allowlisted."""

    allowed: tuple[AllowedRange, ...] = ()

    @classmethod
    def from_allowlist(cls, entries: Iterable[str]) -> AddressPolicy:
        """Entries: `ADDRESS` or `ADDRESS/PREFIX`, optionally `:PORT`; IPv6 in brackets (`[::1]:8080`).

        Blank entries are skipped so that an empty setting means "nothing allowlisted".
        """
        return cls(tuple(_parse_entry(entry) for entry in entries if entry.strip()))

    def refusal(self, address: Address, port: int) -> str | None:
        """None when `address:port` may be contacted, else a short reason."""
        embedded = _embedded_ipv4(address)
        if self._allowlisted(address, port) or (embedded is not None and self._allowlisted(embedded, port)):
            return None
        # An IPv6 form of an IPv4 address is judged as the IPv4 address it reaches.
        effective = address if embedded is None else embedded
        shown = str(address) if embedded is None else f"{address} ({embedded})"
        for network, label in _BLOCKED:
            if effective in network:
                return f"{shown} is {label}"
        if effective.is_reserved:
            return f"{shown} is a reserved address"
        if not effective.is_global:
            return f"{shown} is not a globally reachable address"
        return None

    def _allowlisted(self, address: Address, port: int) -> bool:
        metadata = any(address in network for network in _METADATA_ADDRESSES)
        return any(
            address in entry.network
            and (entry.port is None or entry.port == port)
            and (not metadata or entry.network.num_addresses == 1)
            for entry in self.allowed
        )


PUBLIC_ONLY = AddressPolicy()  # nothing allowlisted: public addresses only


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address would actually reach (mapped, compatible, NAT64, 6to4)."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    # ::/96 also holds :: and ::1, which are IPv6's own unspecified and loopback addresses.
    if (address in _IPV4_COMPATIBLE and int(address) > 1) or address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _parse_entry(entry: str) -> AllowedRange:
    text = entry.strip()
    port: int | None = None
    if text.startswith("["):
        inside, closed, rest = text[1:].partition("]")
        if not closed or ":" not in inside or (rest and not rest.startswith(":")):
            raise ValueError(f"bad allowlist entry {entry!r}: expected [IPV6] or [IPV6]:PORT")
        network_text = inside
        if rest:
            port = _parse_port(rest[1:], entry)
    elif text.count(":") == 1:
        network_text, _, port_text = text.partition(":")
        port = _parse_port(port_text, entry)
    elif ":" in text:
        # Without brackets "::1:8080" is both an address and an address with a port.
        raise ValueError(f"bad allowlist entry {entry!r}: put IPv6 addresses in brackets, e.g. [::1]:8080")
    else:
        network_text = text
    try:
        network = ipaddress.ip_network(network_text)
    except ValueError as e:
        raise ValueError(f"bad allowlist entry {entry!r}: {e}") from None
    return AllowedRange(network, port)


def _parse_port(text: str, entry: str) -> int:
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise ValueError(f"bad allowlist entry {entry!r}: port must be 1-65535")
    return int(text)


def resolve_host(host: str, port: int) -> list[str]:
    """All addresses `host` resolves to, via getaddrinfo (which also parses numeric forms like 0x7f.1)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # lower-case, IPv6 without brackets
    port: int
    path: str  # path and query, sent as the request target


def _parse_url(url: str) -> _Target:
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in url):
        raise OutboundRefused("URL contains whitespace or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise OutboundRefused("URL scheme must be http or https")
    if "@" in parts.netloc:
        raise OutboundRefused("URL must not contain a user name or password")
    host = parts.hostname
    if not host:
        raise OutboundRefused("URL has no host")
    if host.rstrip(".") in _METADATA_HOSTNAMES:
        raise OutboundRefused(f"host {host} is a cloud metadata service")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range
        port = 0
    if port is None:
        port = 443 if scheme == "https" else 80
    elif port == 0:
        raise OutboundRefused("URL has an invalid port")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(scheme, host, port, path)


def _checked_addresses(target: _Target, policy: AddressPolicy, resolve: Resolver) -> list[str]:
    """The addresses of `target`, all allowed by `policy`; raises OutboundRefused otherwise."""
    try:
        resolved = resolve(target.host, target.port)
    except (OSError, UnicodeError):  # gaierror, or a name IDNA cannot encode
        resolved = []
    if not resolved:
        raise OutboundRefused(f"host {target.host} does not resolve")
    addresses: list[str] = []
    for text in dict.fromkeys(resolved):  # dedupe, keep resolver order
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            raise OutboundRefused(f"host {target.host} resolved to an invalid address {text!r}") from None
        # One bad address refuses the URL: the connection could land on any of them.
        reason = policy.refusal(address, target.port)
        if reason:
            raise OutboundRefused(f"host {target.host} resolves to {reason}")
        addresses.append(text)
    if _nonstandard_ipv4(target.host):
        # Only dotted decimal means the same address to every client that may connect.
        raise OutboundRefused(
            f"host {target.host} is an IPv4 address in a non-standard form; write it as {addresses[0]}"
        )
    return addresses


def _nonstandard_ipv4(host: str) -> bool:
    """Whether `host` is an IPv4 address spelled other than as dotted decimal (decimal, octal, hex, short)."""
    if ":" in host:  # an IPv6 literal, whose last group may look like a number
        return False
    last_label = host.removesuffix(".").rsplit(".", 1)[-1]
    if not _NUMERIC_LABEL.fullmatch(last_label):
        return False
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return True
    return False


def check_url(url: str, policy: AddressPolicy, *, resolve: Resolver = resolve_host) -> str | None:
    """None if `url` (a webhook target, or a source's S3 endpoint) may be contacted now, else the reason."""
    try:
        _checked_addresses(_parse_url(url), policy, resolve)
    except OutboundRefused as e:
        return e.reason
    return None


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes  # at most the first MAX_RESPONSE_BODY bytes


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to a checked address; `host` is only used for the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to a checked address; TLS (SNI and certificate check) still uses the hostname."""

    def __init__(self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    policy: AddressPolicy,
    *,
    timeout: float = 10.0,
    resolve: Resolver = resolve_host,
) -> Response:
    """POST `body` to `url` without following redirects (a 3xx is returned like any other status).

    `timeout` applies to each socket operation. Raises OutboundRefused when the policy refuses the
    URL, OutboundError when no connection can be made or the exchange fails, and ValueError for
    headers that HTTP cannot carry (a caller bug, not a delivery failure).
    """
    if any(name.lower() == "host" for name in headers):
        raise ValueError("the Host header comes from the URL")
    target = _parse_url(url)
    addresses = _checked_addresses(target, policy, resolve)
    tls = ssl.create_default_context() if target.scheme == "https" else None
    host = f"[{target.host}]" if ":" in target.host else target.host
    where = f"{target.scheme}://{host}:{target.port}"  # no path: it may carry secrets
    last_error: OSError | None = None
    for address in addresses:
        connection: http.client.HTTPConnection
        if tls is not None:
            connection = _PinnedHTTPSConnection(target.host, target.port, address, timeout, tls)
        else:
            connection = _PinnedHTTPConnection(target.host, target.port, address, timeout)
        try:
            try:
                connection.connect()
            except OSError as e:  # nothing sent yet, so the next address is safe to try
                last_error = e
                continue
            connection.request("POST", target.path, body=body, headers=dict(headers))
            response = connection.getresponse()
            return Response(response.status, response.read(MAX_RESPONSE_BODY))
        except (OSError, http.client.HTTPException) as e:
            # Sent (perhaps partly): another address could deliver twice, so stop here.
            raise OutboundError(f"POST to {where} failed: {e}") from e
        finally:
            connection.close()
    raise OutboundError(f"cannot connect to {where}: {last_error}") from last_error
