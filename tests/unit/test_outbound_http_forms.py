"""Webhook URLs: IPv4 addresses in non-standard spellings, and redirects toward forbidden addresses."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.shared.outbound_http import PUBLIC_ONLY, AddressPolicy, OutboundRefused, Response, check_url, post


def resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


# --- spellings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # decimal
        "http://0177.0.0.1/",  # octal
        "http://0x7f.1/",  # hex, short
        "http://0x7F000001:8080/",
        "http://127.1/",  # short
        "http://127.0.1/",
        "http://127.0.0.01/",  # a leading zero: octal to some parsers
    ],
)
def test_loopback_spellings_are_refused_as_loopback(url: str) -> None:
    # The real getaddrinfo parses these numerically: no DNS traffic.
    reason = check_url(url, PUBLIC_ONLY)
    assert reason is not None and "127.0.0.1 is a loopback address" in reason


@pytest.mark.parametrize(
    ("url", "meaning"),
    [
        ("http://134744072/", "8.8.8.8"),  # decimal
        ("http://0x08080808/", "8.8.8.8"),  # hex
        ("http://010.010.010.010/", "8.8.8.8"),  # octal
        ("http://8.8.2056/", "8.8.8.8"),  # short
        ("http://8.8.8.8./", "8.8.8.8"),  # trailing dot
    ],
)
def test_public_addresses_in_other_spellings_are_refused_too(url: str, meaning: str) -> None:
    host = url.removeprefix("http://").rstrip("/")
    spelled = resolver({host: [meaning]})
    reason = check_url(url, PUBLIC_ONLY, resolve=spelled)
    assert reason == f"host {host} is an IPv4 address in a non-standard form; write it as {meaning}"


def test_an_allowlisted_address_in_another_spelling_is_still_refused() -> None:
    # Clients parse these differently (the JVM reads 0177.0.0.1 as 177.0.0.1): only dotted decimal is unambiguous.
    policy = AddressPolicy.from_allowlist(["127.0.0.1"])
    assert check_url("http://127.0.0.1:9000/", policy) is None
    for url in ("http://127.1:9000/", "http://2130706433:9000/", "http://0x7f.0.0.1:9000/"):
        reason = check_url(url, policy)
        assert reason is not None and "non-standard form" in reason, url


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/",
        "https://8.8.8.8/",
        "https://[2606:4700::1111]/",
        "https://[::ffff:8.8.8.8]/",  # ends in a dotted quad, but is an IPv6 literal
        "https://1.hooks.example.com/",  # numeric labels are fine before the last one
        "https://0x7f.hooks.example.com/",
        "https://hooks.example.com./",  # a fully qualified name
    ],
)
def test_names_and_canonical_addresses_pass(url: str) -> None:
    public = resolver(
        {
            name: ["93.184.215.14"]
            for name in ("hooks.example.com", "1.hooks.example.com", "0x7f.hooks.example.com", "hooks.example.com.")
        }
        | {"8.8.8.8": ["8.8.8.8"], "2606:4700::1111": ["2606:4700::1111"], "::ffff:8.8.8.8": ["::ffff:8.8.8.8"]}
    )
    assert check_url(url, PUBLIC_ONLY, resolve=public) is None


# --- post against real listeners ---------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    paths: list[str]
    location: str = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.paths.append(self.path)
        self.send_response(307 if self.location else 204)
        if self.location:
            self.send_header("Location", self.location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def listener(host: str, location: str = "") -> Iterator[tuple[int, list[str]]]:
    paths: list[str] = []
    handler = type("Handler", (Recorder,), {"paths": paths, "location": location})
    server = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_post_refuses_a_non_standard_spelling_before_connecting() -> None:
    with listener("127.0.0.1") as (port, paths):
        policy = AddressPolicy.from_allowlist([f"127.0.0.1:{port}"])
        assert post(f"http://127.0.0.1:{port}/ok", b"{}", {}, policy).status == 204
        with pytest.raises(OutboundRefused, match="non-standard form"):
            post(f"http://2130706433:{port}/decimal", b"{}", {}, policy)
        assert paths == ["/ok"]


@pytest.mark.parametrize("target", ["http://127.0.0.2:{port}/internal", "http://169.254.169.254/latest/meta-data/"])
def test_a_redirect_to_a_forbidden_address_is_not_followed(target: str) -> None:
    # The forbidden side listens on 127.0.0.2 (loopback, not allowlisted): it must never be contacted.
    with listener("127.0.0.2") as (forbidden_port, forbidden_paths):
        location = target.format(port=forbidden_port)
        with listener("127.0.0.1", location=location) as (port, paths):
            policy = AddressPolicy.from_allowlist([f"127.0.0.1:{port}"])
            response = post(f"http://127.0.0.1:{port}/hook", b"{}", {}, policy, timeout=2.0)
        assert response == Response(307, b"")  # returned as is: an undelivered attempt, retried later
        assert paths == ["/hook"]
        assert forbidden_paths == []
        assert check_url(location, policy) is not None  # and the policy would refuse it as a webhook URL
