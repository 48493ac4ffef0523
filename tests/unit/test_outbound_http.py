from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from services.shared import outbound_http
from services.shared.outbound_http import (
    AddressPolicy,
    AllowedRange,
    OutboundError,
    OutboundRefused,
    Response,
    check_url,
    post,
)

NO_ALLOWLIST = AddressPolicy()


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    """A resolver that knows only `table`; unknown names fail like getaddrinfo does."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


PUBLIC = fake_resolver({"hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]})


# --- allowlist parsing -------------------------------------------------------------------------


def test_allowlist_entries_parse() -> None:
    policy = AddressPolicy.from_allowlist(
        ["127.0.0.1", "10.0.0.0/8", "192.168.1.5:8080", "[::1]:8443", "[fd00::/8]", " 172.16.0.0/12:443 ", ""]
    )
    assert policy.allowed == (
        AllowedRange(ipaddress.ip_network("127.0.0.1/32")),
        AllowedRange(ipaddress.ip_network("10.0.0.0/8")),
        AllowedRange(ipaddress.ip_network("192.168.1.5/32"), 8080),
        AllowedRange(ipaddress.ip_network("::1/128"), 8443),
        AllowedRange(ipaddress.ip_network("fd00::/8")),
        AllowedRange(ipaddress.ip_network("172.16.0.0/12"), 443),
    )


@pytest.mark.parametrize(
    "entry",
    [
        "localhost",
        "10.0.0.1/8",  # host bits set: ambiguous, say what you mean
        "10.0.0.0/33",
        "127.0.0.1:0",
        "127.0.0.1:65536",
        "127.0.0.1:http",
        "127.0.0.1:",
        "::1",  # IPv6 needs brackets
        "::1:8080",
        "[::1",
        "[::1]8080",
        "[127.0.0.1]",
        "010.0.0.1",  # leading zeros could mean octal
    ],
)
def test_bad_allowlist_entries_raise_naming_the_entry(entry: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(entry))):
        AddressPolicy.from_allowlist(["127.0.0.1", entry])


# --- the address policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.64.0.1", "shared"),
        ("100.127.255.254", "shared"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "not a globally reachable"),  # documentation range, via the fallback
        # IPv6 forms that reach an IPv4 address are judged by that address.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    reason = NO_ALLOWLIST.refusal(ipaddress.ip_address(address), 443)
    assert reason is not None
    assert reason.startswith(str(ipaddress.ip_address(address)))
    assert kind in reason


def test_reason_is_short_and_names_the_address() -> None:
    assert NO_ALLOWLIST.refusal(ipaddress.ip_address("127.0.0.1"), 80) == "127.0.0.1 is a loopback address"


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert NO_ALLOWLIST.refusal(ipaddress.ip_address(address), 443) is None


def test_allowlist_opens_addresses_and_ports() -> None:
    policy = AddressPolicy.from_allowlist(["10.0.0.0/8", "127.0.0.1:8080", "[fd00::/8]"])
    assert policy.refusal(ipaddress.ip_address("10.9.8.7"), 1234) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.1"), 8080) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.1"), 8081) == "127.0.0.1 is a loopback address"
    assert policy.refusal(ipaddress.ip_address("127.0.0.2"), 8080) is not None
    assert policy.refusal(ipaddress.ip_address("fd00::5"), 443) is None
    assert policy.refusal(ipaddress.ip_address("192.168.0.1"), 443) is not None
    # The mapped form of an allowlisted IPv4 address reaches the same host, so it is allowed too.
    assert policy.refusal(ipaddress.ip_address("::ffff:10.1.1.1"), 443) is None


def test_metadata_addresses_need_an_exact_allowlist_entry() -> None:
    broad = AddressPolicy.from_allowlist(["[fd00::/8]", "169.254.0.0/16"])
    assert broad.refusal(ipaddress.ip_address("fd00::1"), 80) is None
    assert broad.refusal(ipaddress.ip_address("fd00:ec2::254"), 80) is not None
    assert broad.refusal(ipaddress.ip_address("169.254.169.254"), 80) is not None
    assert broad.refusal(ipaddress.ip_address("::ffff:169.254.169.254"), 80) is not None
    exact = AddressPolicy.from_allowlist(["[fd00:ec2::254]", "169.254.169.254:80"])
    assert exact.refusal(ipaddress.ip_address("fd00:ec2::254"), 80) is None
    assert exact.refusal(ipaddress.ip_address("169.254.169.254"), 80) is None


# --- check_url ---------------------------------------------------------------------------------


def test_public_url_passes() -> None:
    assert check_url("https://hooks.example.com/in?x=1", NO_ALLOWLIST, resolve=PUBLIC) is None
    assert check_url("http://hooks.example.com:8080/", NO_ALLOWLIST, resolve=PUBLIC) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://2130706433/",  # decimal
        "http://0177.0.0.1/",  # octal
        "http://0x7f.0.0.1/",  # hex
        "http://0x7f000001/",
        "http://127.1/",  # short form
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
    ],
)
def test_loopback_in_any_spelling_is_refused(url: str) -> None:
    # Uses the real getaddrinfo: these are all numeric (or /etc/hosts), so no DNS traffic.
    reason = check_url(url, NO_ALLOWLIST)
    assert reason is not None
    assert "loopback" in reason


@pytest.mark.parametrize(
    "url",
    [
        "http://metadata/computeMetadata/v1/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
        "http://instance-data/latest/meta-data/",
    ],
)
def test_metadata_names_are_refused_without_resolving(url: str) -> None:
    def must_not_resolve(host: str, port: int) -> list[str]:
        raise AssertionError("resolved a metadata name")

    reason = check_url(url, NO_ALLOWLIST, resolve=must_not_resolve)
    assert reason is not None
    assert "metadata" in reason


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/", "URL scheme must be http or https"),
        ("file:///etc/passwd", "URL scheme must be http or https"),
        ("gopher://hooks.example.com/", "URL scheme must be http or https"),
        ("hooks.example.com/path", "URL scheme must be http or https"),
        ("https://user:pw@hooks.example.com/", "URL must not contain a user name or password"),
        ("https://user@hooks.example.com/", "URL must not contain a user name or password"),
        ("https://hooks.example.com@127.0.0.1/", "URL must not contain a user name or password"),
        ("https:///path", "URL has no host"),
        ("https://hooks.example.com:99999/", "URL has an invalid port"),
        ("https://hooks.example.com:0/", "URL has an invalid port"),
        ("https://hooks.example.com:x/", "URL has an invalid port"),
        ("https://hooks.example.com/a b", "URL contains whitespace or control characters"),
        ("https://hooks.example.com/\r\nX: y", "URL contains whitespace or control characters"),
        ("https://nowhere.example.com/", "host nowhere.example.com does not resolve"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, reason: str) -> None:
    assert check_url(url, NO_ALLOWLIST, resolve=PUBLIC) == reason


def test_empty_resolution_does_not_resolve() -> None:
    reason = check_url("https://empty.example.com/", NO_ALLOWLIST, resolve=fake_resolver({"empty.example.com": []}))
    assert reason == "host empty.example.com does not resolve"


def test_one_private_address_among_public_ones_refuses_the_url() -> None:
    mixed = fake_resolver({"hooks.example.com": ["93.184.215.14", "10.0.0.7", "8.8.8.8"]})
    assert check_url("https://hooks.example.com/", NO_ALLOWLIST, resolve=mixed) == (
        "host hooks.example.com resolves to 10.0.0.7 is a private address"
    )


def test_resolver_gets_host_and_effective_port() -> None:
    calls: list[tuple[str, int]] = []

    def recording(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.215.14"]

    check_url("https://Hooks.Example.com/", NO_ALLOWLIST, resolve=recording)
    check_url("http://hooks.example.com/", NO_ALLOWLIST, resolve=recording)
    check_url("http://[2606:4700::1111]:8080/", NO_ALLOWLIST, resolve=recording)
    assert calls == [("hooks.example.com", 443), ("hooks.example.com", 80), ("2606:4700::1111", 8080)]


def test_allowlisted_private_url_passes_only_on_its_port() -> None:
    internal = fake_resolver({"hooks.internal.example": ["10.0.0.7"]})
    policy = AddressPolicy.from_allowlist(["10.0.0.7:8443"])
    assert check_url("https://hooks.internal.example:8443/", policy, resolve=internal) is None
    assert check_url("https://hooks.internal.example/", policy, resolve=internal) is not None


# --- post against a real server on 127.0.0.1 ---------------------------------------------------


@dataclass
class Received:
    path: str
    host: str | None
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Recorder(BaseHTTPRequestHandler):
    received: list[Received]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append(Received(self.path, self.headers.get("Host"), self.rfile.read(length), dict(self.headers)))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/big":
            payload = b"x" * 10_000
            self.send_response(500)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        else:
            self.send_response(202)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Server:
    port: int
    received: list[Received]


@contextmanager
def serving(server: ThreadingHTTPServer) -> Iterator[None]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def http_server() -> Iterator[Server]:
    received: list[Received] = []
    handler = type("Handler", (Recorder,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with serving(httpd):
        yield Server(httpd.server_address[1], received)


LOCAL = AddressPolicy.from_allowlist(["127.0.0.1"])


def test_post_is_refused_when_loopback_is_not_allowlisted(http_server: Server) -> None:
    with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1 is a loopback address") as refused:
        post(f"http://127.0.0.1:{http_server.port}/hook", b"{}", {}, NO_ALLOWLIST)
    assert "loopback" in refused.value.reason
    assert http_server.received == []


@pytest.mark.parametrize("entry", ["127.0.0.1", "127.0.0.0/8", "127.0.0.1:{port}"])
def test_post_delivers_when_allowlisted(http_server: Server, entry: str) -> None:
    policy = AddressPolicy.from_allowlist([entry.format(port=http_server.port)])
    response = post(
        f"http://127.0.0.1:{http_server.port}/hook?id=7",
        b'{"event":"ping"}',
        {"Content-Type": "application/json", "Autoloader-Signature": "t=1,v1=ab"},
        policy,
    )
    assert response == Response(202, b"ok")
    [got] = http_server.received
    assert got.path == "/hook?id=7"
    assert got.body == b'{"event":"ping"}'
    assert got.host == f"127.0.0.1:{http_server.port}"
    assert got.headers["Autoloader-Signature"] == "t=1,v1=ab"
    assert got.headers["Content-Type"] == "application/json"


def test_post_is_refused_on_another_port_than_allowlisted(http_server: Server) -> None:
    policy = AddressPolicy.from_allowlist([f"127.0.0.1:{http_server.port + 1}"])
    with pytest.raises(OutboundRefused):
        post(f"http://127.0.0.1:{http_server.port}/hook", b"{}", {}, policy)
    assert http_server.received == []


def test_post_connects_to_the_checked_address_and_sends_the_original_host(http_server: Server) -> None:
    calls: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    # The name does not exist in real DNS: delivery only works if post connects to the address it checked.
    response = post(f"http://hooks.example.test:{http_server.port}/hook", b"x", {}, LOCAL, resolve=resolve)
    assert response.status == 202
    assert calls == ["hooks.example.test"]  # resolved once, no second lookup
    assert http_server.received[0].host == f"hooks.example.test:{http_server.port}"


def test_post_returns_redirects_without_following_them(http_server: Server) -> None:
    response = post(f"http://127.0.0.1:{http_server.port}/redirect", b"x", {}, LOCAL)
    assert response == Response(302, b"")
    assert [r.path for r in http_server.received] == ["/redirect"]


def test_post_keeps_only_the_start_of_the_response_body(http_server: Server) -> None:
    response = post(f"http://127.0.0.1:{http_server.port}/big", b"x", {}, LOCAL)
    assert response.status == 500
    assert response.body == b"x" * outbound_http.MAX_RESPONSE_BODY


def test_post_refuses_a_public_name_that_resolves_to_loopback(http_server: Server) -> None:
    rebinding = fake_resolver({"hooks.example.com": ["127.0.0.1"]})
    with pytest.raises(
        OutboundRefused, match=re.escape("hooks.example.com resolves to 127.0.0.1 is a loopback address")
    ):
        post(f"http://hooks.example.com:{http_server.port}/hook", b"x", {}, NO_ALLOWLIST, resolve=rebinding)
    assert http_server.received == []


def test_post_refuses_bad_urls_before_resolving() -> None:
    with pytest.raises(OutboundRefused, match="metadata"):
        post("http://metadata.google.internal/", b"x", {}, LOCAL, resolve=PUBLIC)
    with pytest.raises(OutboundRefused, match="scheme"):
        post("ftp://hooks.example.com/", b"x", {}, LOCAL, resolve=PUBLIC)


def test_post_rejects_a_host_header_from_the_caller() -> None:
    with pytest.raises(ValueError, match="Host"):
        post("http://hooks.example.com/", b"x", {"host": "evil"}, LOCAL, resolve=PUBLIC)


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_connection_refused_is_an_outbound_error() -> None:
    port = unused_port()
    with pytest.raises(OutboundError, match=f"cannot connect to http://127.0.0.1:{port}") as failed:
        post(f"http://127.0.0.1:{port}/hook", b"x", {}, LOCAL)
    assert isinstance(failed.value.__cause__, ConnectionRefusedError)


def test_post_falls_back_to_the_next_address_when_connecting_fails(http_server: Server) -> None:
    # 127.0.0.2 is loopback too, but nothing listens on it at this port.
    listener_only_on_first = fake_resolver({"hooks.example.test": ["127.0.0.2", "127.0.0.1"]})
    policy = AddressPolicy.from_allowlist(["127.0.0.0/8"])
    response = post(
        f"http://hooks.example.test:{http_server.port}/hook",
        b"x",
        {},
        policy,
        timeout=2.0,
        resolve=listener_only_on_first,
    )
    assert response.status == 202


def test_a_silent_server_times_out_as_an_outbound_error() -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(OutboundError, match="failed") as failed:
            post(f"http://127.0.0.1:{port}/hook", b"x", {}, LOCAL, timeout=0.2)
    assert isinstance(failed.value.__cause__, TimeoutError)


# --- https: SNI and certificate verification against the hostname ------------------------------


def self_signed(tmp_path: Path, hostname: str) -> tuple[Path, Path]:
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[Server, Path, list[str | None]]]:
    cert, key = self_signed(tmp_path, "hooks.example.test")
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    def record_sni(sock: object, name: str | None, ctx: ssl.SSLContext) -> None:
        server_names.append(name)

    context.sni_callback = record_sni
    received: list[Received] = []
    handler = type("Handler", (Recorder,), {"received": received})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    with serving(httpd):
        yield Server(httpd.server_address[1], received), cert, server_names


def trust(monkeypatch: pytest.MonkeyPatch, cafile: Path) -> None:
    """Make post's default TLS context trust `cafile` (and nothing else)."""
    original = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda: original(cafile=cafile))


def test_https_uses_sni_and_verifies_the_hostname(
    https_server: tuple[Server, Path, list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, cert, server_names = https_server
    trust(monkeypatch, cert)
    pinned = fake_resolver({"hooks.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    response = post(f"https://hooks.example.test:{server.port}/hook", b"secure", {}, LOCAL, resolve=pinned)
    assert response == Response(202, b"ok")
    assert server_names == ["hooks.example.test"]
    assert server.received[0].body == b"secure"
    assert server.received[0].host == f"hooks.example.test:{server.port}"
    # Same trusted certificate, but issued for another name: refused by hostname verification.
    with pytest.raises(OutboundError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
        post(f"https://other.example.test:{server.port}/hook", b"x", {}, LOCAL, resolve=pinned)
    assert len(server.received) == 1


def test_https_rejects_an_untrusted_certificate(https_server: tuple[Server, Path, list[str | None]]) -> None:
    server, _, _ = https_server
    pinned = fake_resolver({"hooks.example.test": ["127.0.0.1"]})
    with pytest.raises(OutboundError, match="CERTIFICATE_VERIFY_FAILED"):
        post(f"https://hooks.example.test:{server.port}/hook", b"x", {}, LOCAL, resolve=pinned)
    assert server.received == []
