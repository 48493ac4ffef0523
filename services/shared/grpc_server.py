"""Start a grpc.aio server with health, reflection and the interceptor chain; stop it gracefully."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.shared.logging import get_logger

_log = get_logger("server")


@dataclass
class GrpcServer:
    """A started server: its bound port and the health servicer to flip at shutdown."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: list[str] = field(default_factory=list)

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in [*self.service_names, health.OVERALL_HEALTH]:
            await self.health.set(name, status)

    async def stop(self, grace: float) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)


async def start_grpc_server(
    *,
    host: str,
    port: int,
    service_names: list[str],
    add_servicers: Callable[[grpc.aio.Server], None],
    interceptors: list[grpc.aio.ServerInterceptor],
    credentials: grpc.ServerCredentials | None = None,
) -> GrpcServer:
    """Bind, register everything and start. Health reports SERVING only once all is registered.
    With credentials the port speaks TLS only (services.shared.tls builds them from the settings)."""
    server = grpc.aio.server(interceptors=interceptors)
    add_servicers(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    address = f"{host}:{port}"
    bound = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    if bound == 0:
        raise OSError(f"could not bind gRPC server to {host}:{port}")
    await server.start()
    started = GrpcServer(server=server, port=bound, health=health_servicer, service_names=service_names)
    await started.set_serving(True)
    return started


def write_port_file(path: Path | None, port: int) -> None:
    """Tell a supervising process which port was bound (written atomically)."""
    if path is None:
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(port))
    tmp.replace(path)


async def run_until_signalled(
    started: GrpcServer, *, grace: float, on_stop: Callable[[], Awaitable[None]] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT, then stop taking calls, let in-flight ones finish, and clean up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _log.info("stopping", grace_seconds=grace)
    await started.stop(grace)
    if on_stop is not None:
        await on_stop()
    _log.info("stopped")
