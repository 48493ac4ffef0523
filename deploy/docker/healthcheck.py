"""Container health check: `healthcheck.py grpc` asks the service's own grpc.health.v1 endpoint,
`healthcheck.py http` asks the gateway's GET /healthz. Exit 0 when serving, 1 otherwise.

Used by the images' HEALTHCHECK and by deploy/compose.yaml; Kubernetes uses its native gRPC / HTTP probes.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 3.0


def grpc_serving(port: str) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S
            )
        except grpc.RpcError as error:
            print(f"health check failed: {error.code().name}", file=sys.stderr)
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def http_serving(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_S) as response:
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
