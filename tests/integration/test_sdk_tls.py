"""Both SDK clients over TLS with a client certificate (mutual TLS), against the TLS stack of test_tls.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from autoloader.client import AutoloaderClient, AutoloaderHttpClient, TlsOptions, Unavailable
from tests.integration import test_tls

pytestmark = pytest.mark.integration

# test_tls.py's fixtures: a tracker, control and gateway that serve TLS and require client certificates.
certificates = test_tls.certificates
tls_stack = test_tls.tls_stack


async def test_both_clients_present_their_certificate(tls_stack: test_tls.TlsStack, tmp_path: Path) -> None:
    environment = {
        "AUTOLOADER_HOME": str(tmp_path),
        "AUTOLOADER_CONTROL_ADDRESS": tls_stack.control.address,
        "AUTOLOADER_HTTP_URL": f"https://127.0.0.1:{tls_stack.gateway_port}",
        "AUTOLOADER_TOKEN": tls_stack.admin_token,
        "AUTOLOADER_TLS_CA_FILE": str(tls_stack.ca.cert_file),
        "AUTOLOADER_TLS_CERT_FILE": str(tls_stack.client.cert),
        "AUTOLOADER_TLS_KEY_FILE": str(tls_stack.client.key),
    }

    def who_am_i() -> tuple[str, str]:
        with AutoloaderClient.from_environment(environment) as grpc_client:
            over_grpc = grpc_client.whoami().name
        with AutoloaderHttpClient.from_environment(environment) as http_client:
            over_http = http_client.whoami().name
        return over_grpc, over_http

    def without_certificate() -> None:
        tls = TlsOptions.load(ca_file=tls_stack.ca.cert_file)
        with AutoloaderClient(tls_stack.control.address, tls_stack.admin_token, tls=tls, timeout=5) as client:
            client.whoami()

    over_grpc, over_http = await asyncio.to_thread(who_am_i)
    assert over_grpc == over_http != ""
    with pytest.raises(Unavailable):
        await asyncio.to_thread(without_certificate)
