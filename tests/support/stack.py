"""The services, gateway and database started in-process on dynamic ports, for integration tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import uvicorn
from pydantic import SecretStr

from autoloader.executor.v1 import executor_pb2, executor_pb2_grpc
from autoloader.stack.bootstrap import prepare_database
from gateway.app import create_app
from services.control.app import start as start_control
from services.executor.app import start as start_executor
from services.shared.auth import Role, new_secret, new_token_id
from services.shared.clock import Clock
from services.shared.config import ControlSettings, ExecutorSettings, TrackerSettings
from services.shared.db import create_pool
from services.shared.service_runtime import RunningService
from services.shared.token_repository import TokenRepository
from services.tracker.app import start as start_tracker


@dataclass
class InProcessStack:
    database_url: str
    admin_token: str
    executor_token: str
    control: RunningService
    tracker: RunningService
    executor: RunningService
    http_url: str
    _gateway: uvicorn.Server
    _gateway_task: asyncio.Task[None]
    clock: Clock | None = None
    home: Path | None = None  # the services' AUTOLOADER_HOME: tokens and keys local sources must not read
    _token_counter: list[int] = field(default_factory=lambda: [0])

    def http(self, token: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.http_url, headers=headers, timeout=30)

    async def make_token(self, role: Role, name: str | None = None) -> str:
        """A token for a fresh principal (or the given name), created directly in the database."""
        self._token_counter[0] += 1
        secret = new_secret()
        pool = await create_pool(self.database_url, service="tests", max_size=1)
        try:
            await TokenRepository(pool).create(
                token_id=new_token_id(),
                name=name or f"{role.value}-{self._token_counter[0]}",
                role=role,
                secret=secret,
                created_by="tests",
            )
        finally:
            await pool.close()
        return secret

    async def sql(self, statement: str) -> list[list[str | None]]:
        """Run Spark SQL through the executor's ExecuteSql RPC, as `autoloader sql` does."""
        async with grpc.aio.insecure_channel(self.executor.address) as channel:
            response = await executor_pb2_grpc.ExecutorServiceStub(channel).ExecuteSql(
                executor_pb2.ExecuteSqlRequest(statement=statement),
                metadata=(("authorization", f"Bearer {self.admin_token}"),),
                timeout=300,
            )
        return [[None if n else v for v, n in zip(r.values, r.nulls, strict=True)] for r in response.rows]

    async def wait_for_run(self, run_id: str, timeout: float = 240, poll_seconds: float = 0.2) -> dict[str, Any]:
        """Poll GET /api/v1/runs/{run_id} until the run ends; return its JSON."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self.http(self.admin_token) as client:
            while True:
                run: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
                if run.get("status") in ("SUCCESS", "FAILED", "PARTIAL_SUCCESS", "CANCELLED"):
                    return run
                if asyncio.get_running_loop().time() > deadline:
                    raise AssertionError(f"run {run_id} did not end within {timeout}s: {run}")
                await asyncio.sleep(poll_seconds)

    async def stop(self) -> None:
        self._gateway.should_exit = True
        await self._gateway_task
        for service in (self.executor, self.tracker, self.control):
            await service.stop(grace=0.5)


# Test S3 servers (moto, tests/support/s3.py) listen on 127.0.0.1: sources may name it as their endpoint.
LOOPBACK_S3 = "127.0.0.1"


async def serve_app(app: Any, **options: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve an ASGI app on a free loopback port in this event loop: (server, its task, the port). options go
    to uvicorn (e.g. its TLS settings)."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on", **options))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    return server, task, server.servers[0].sockets[0].getsockname()[1]


async def start_stack(
    database_url: str,
    home: Path,
    *,
    with_worker: bool = False,
    jar_cache: Path | None = None,
    lease_seconds: int = 30,
    clock: Clock | None = None,
    webhook_allowlist: str = "",
    endpoint_allowlist: str = LOOPBACK_S3,
    preview_timeout_seconds: float = 60.0,
    spark_master: str = "local[*]",
    poll_seconds: float = 0.2,
) -> InProcessStack:
    """Tracker, control, executor (its run loop only when with_worker) and the gateway, in this process."""
    home.mkdir(parents=True, exist_ok=True)
    credentials = await prepare_database(database_url, home)
    url = SecretStr(database_url)
    tracker = await start_tracker(
        TrackerSettings(
            database_url=url,
            grpc_port=0,
            home=home,
            webhook_allowlist=webhook_allowlist,
            webhook_poll_seconds=0.2,
            webhook_backoff_seconds=0.5,
        )
    )
    # The scheduler polls rarely: tests drive it through control.background["scheduler"].tick_once().
    control = await start_control(
        ControlSettings(
            database_url=url,
            grpc_port=0,
            home=home,
            tracker_address=tracker.address,
            token=SecretStr(credentials.executor_token),
            schedule_poll_seconds=3600,
            webhook_allowlist=webhook_allowlist,
            endpoint_allowlist=endpoint_allowlist,
            preview_timeout_seconds=preview_timeout_seconds,
        ),
        clock=clock,
    )
    executor = await start_executor(
        ExecutorSettings(
            database_url=url,
            grpc_port=0,
            home=home,
            tracker_address=tracker.address,
            token=SecretStr(credentials.executor_token),
            worker_enabled=with_worker,
            spark_master=spark_master,
            jar_cache=jar_cache,
            lease_seconds=lease_seconds,
            poll_seconds=poll_seconds,
            endpoint_allowlist=endpoint_allowlist,
        )
    )
    app = create_app(
        {"control": control.address, "tracker": tracker.address, "executor": executor.address},
        max_body_bytes=64 * 1024,
    )
    server, task, port = await serve_app(app)
    return InProcessStack(
        database_url=database_url,
        admin_token=credentials.admin_token,
        executor_token=credentials.executor_token,
        control=control,
        tracker=tracker,
        executor=executor,
        http_url=f"http://127.0.0.1:{port}",
        _gateway=server,
        _gateway_task=task,
        clock=clock,
        home=home,
    )
