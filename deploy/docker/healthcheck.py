"""Container health check: `healthcheck.py grpc` asks the service's own grpc.health.v1 endpoint,
`healthcheck.py http` asks the gateway's GET /healthz. Exit 0 when serving, 1 otherwise.

Used by the images' HEALTHCHECK and by deploy/compose.yaml; Kubernetes uses its native gRPC / HTTP probes.
When the process serves TLS (AUTOLOADER_TLS_CERT_FILE, read from the same environment) the probe speaks TLS
too, trusting AUTOLOADER_TLS_CA_FILE (else the certificate itself, enough when it is self-signed) and
presenting the process's own certificate, which servers with AUTOLOADER_TLS_CLIENT_AUTH require.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

    from services.shared.tls import TlsMaterial

TIMEOUT_S = 3.0


def _served_tls() -> TlsMaterial | None:
    from services.shared.config import CommonSettings
    from services.shared.tls import TlsMaterial

    tls = TlsMaterial.from_settings(CommonSettings())
    return tls if tls.serves_tls else None


def _probe_context(tls: TlsMaterial) -> ssl.SSLContext:
    """Verifies the chain but not the name: the probe dials 127.0.0.1, which the certificate need not name."""
    context = ssl.create_default_context(cafile=str(tls.ca_file or tls.cert_file))
    context.check_hostname = False
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


def _served_name(port: str, tls: TlsMaterial) -> str:
    """A name the served certificate holds, for gRPC's host name check of a connection to 127.0.0.1."""
    context = _probe_context(tls)
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", int(port)), timeout=TIMEOUT_S) as raw,
        context.wrap_socket(raw) as connection,
    ):
        certificate = connection.getpeercert() or {}
    alt_names: tuple[tuple[str, str], ...] = certificate.get("subjectAltName", ())  # type: ignore[assignment]
    names = [value for kind, value in alt_names if kind in ("DNS", "IP Address")]
    return str(names[0]) if names else "localhost"


def _grpc_channel(port: str) -> grpc.Channel:
    import grpc

    tls = _served_tls()
    if tls is None:
        return grpc.insecure_channel(f"127.0.0.1:{port}")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls.ca or tls.certificate, private_key=tls.private_key, certificate_chain=tls.certificate
    )
    options = [("grpc.ssl_target_name_override", _served_name(port, tls))]
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=options)


def grpc_serving(port: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        channel = _grpc_channel(port)
    except OSError as error:  # the TLS handshake that learns the served name
        print(f"health check failed: {error}", file=sys.stderr)
        return False
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S
            )
        except grpc.RpcError as error:
            print(f"health check failed: {error.code().name}", file=sys.stderr)
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_serving(port: str) -> bool:
    tls = _served_tls()
    scheme, context = ("https", _probe_context(tls)) if tls is not None else ("http", None)
    try:
        with urllib.request.urlopen(
            f"{scheme}://127.0.0.1:{port}/healthz", timeout=TIMEOUT_S, context=context
        ) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError) as error:
        print(f"health check failed: {error}", file=sys.stderr)
        return False


def main(argv: list[str]) -> int:
    kind = argv[1] if len(argv) > 1 else "grpc"
    if kind == "grpc":
        return 0 if grpc_serving(os.environ.get("AUTOLOADER_GRPC_PORT", "7001")) else 1
    if kind == "http":
        return 0 if http_serving(os.environ.get("AUTOLOADER_HTTP_PORT", "8080")) else 1
    print(f"usage: {argv[0]} grpc|http", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
