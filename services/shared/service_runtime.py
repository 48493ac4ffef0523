"""The life of one service process: pool, migrations, gRPC server, graceful stop."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import grpc

from services.shared import logging as service_logging
from services.shared.auth import Role
from services.shared.config import ServiceSettings, load_settings
from services.shared.db import apply_migrations, create_pool
from services.shared.grpc_server import GrpcServer, run_until_signalled, start_grpc_server, write_port_file
from services.shared.interceptors import CallObserver, ServiceInterceptor
from services.shared.metrics import MetricsEndpoint, ServiceMetrics, serve_metrics
from services.shared.tls import TlsConfigError, server_credentials
from services.shared.token_repository import MIGRATIONS as AUTH_MIGRATIONS
from services.shared.token_repository import SCHEMA as AUTH_SCHEMA
from services.shared.token_repository import Authenticator, TokenRepository

AddServicers = Callable[[grpc.aio.Server], None]


@dataclass
class RunningService:
    grpc: GrpcServer
    pool: asyncpg.Pool
    # Cleanups after the server stopped and before the pool closes (channels, workers).
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Background workers by name (the scheduler, the webhook sender), for tests that drive them directly.
    background: dict[str, Any] = field(default_factory=dict)
    metrics: ServiceMetrics | None = None
    metrics_endpoint: MetricsEndpoint | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.grpc.port}"

    async def stop(self, grace: float = 1.0) -> None:
        await self.grpc.stop(grace)
        await self.close()

    async def close(self) -> None:
        for cleanup in self.on_stop:
            await cleanup()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.stop()
        await self.pool.close()


async def start_service(
    *,
    name: str,
    settings: ServiceSettings,
    schemas: list[tuple[str, Path]],
    service_names: list[str],
    build: Callable[[asyncpg.Pool], AddServicers],
    metrics: ServiceMetrics | None = None,
    minimum_role: Role = Role.VIEWER,
    observe: Callable[[asyncpg.Pool], CallObserver] | None = None,
) -> RunningService:
    """Connect, migrate the shared auth schema and the service's own, then serve (gRPC, and /metrics)."""
    metrics = metrics or ServiceMetrics(name)
    credentials = server_credentials(settings)  # before connecting: a TLS misconfiguration fails fast
    pool = await create_pool(settings.database_url.get_secret_value(), service=name, max_size=settings.db_pool_max_size)
    endpoint = None
    try:
        for schema, directory in [(AUTH_SCHEMA, AUTH_MIGRATIONS), *schemas]:
            await apply_migrations(pool, schema, directory)
        interceptor = ServiceInterceptor(
            Authenticator(TokenRepository(pool)),
            metrics.observe_call,
            minimum_role=minimum_role,
            observe=observe(pool) if observe else None,
        )
        server = await start_grpc_server(
            host=settings.grpc_host,
            port=settings.grpc_port,
            service_names=service_names,
            add_servicers=build(pool),
            interceptors=[interceptor],
            credentials=credentials,
        )
        if settings.metrics_port >= 0:
            endpoint = serve_metrics(metrics, settings.grpc_host, settings.metrics_port)
    except BaseException:
        await pool.close()
        raise
    return RunningService(grpc=server, pool=pool, metrics=metrics, metrics_endpoint=endpoint)


Settings = TypeVar("Settings", bound=ServiceSettings)


def main(
    name: str,
    start: Callable[[Settings], Awaitable[RunningService]],
    settings_type: type[Settings] = ServiceSettings,  # type: ignore[assignment]
) -> None:
    """Entry point of `python -m services.<name> serve`, configured by AUTOLOADER_* variables."""
    parser = argparse.ArgumentParser(prog=f"python -m services.{name}")
    parser.add_argument("command", choices=["serve"], help="run the gRPC server until SIGTERM")
    parser.parse_args()
    settings = load_settings(settings_type)
    try:
        server_credentials(settings)
    except TlsConfigError as error:
        raise SystemExit(f"configuration error: {error}") from None
    service_logging.configure(name, settings.log_level)
    log = service_logging.get_logger("server")

    async def serve() -> None:
        running = await start(settings)
        write_port_file(settings.port_file, running.grpc.port)
        metrics_port = running.metrics_endpoint.port if running.metrics_endpoint else None
        log.info("serving", port=running.grpc.port, metrics_port=metrics_port)
        await run_until_signalled(running.grpc, grace=settings.shutdown_grace_seconds, on_stop=running.close)

    asyncio.run(serve())
