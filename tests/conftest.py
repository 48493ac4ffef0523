from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from autoloader.stack.postgres import EmbeddedPostgres
from services.shared import logging as service_logging
from tests.support.clock import ShiftedClock
from tests.support.stack import InProcessStack, start_stack
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL: AUTOLOADER_TEST_DATABASE_URL if set, else an embedded server started here."""
    external = os.environ.get("AUTOLOADER_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


async def create_database(url: str, name: str) -> str:
    """A fresh database on the server of `url`; returns its URL."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.rsplit("/", 1)[0] + "/" + name


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessStack]:
    """Services and gateway in this process, no run loop: runs wait for executor processes a test starts.

    Its own database, so `loading_stack`'s run loop never takes its runs. This process's SparkSession belongs
    to `loading_stack`'s catalog: query this stack's tables through an executor process, not `stack.sql`.
    """
    service_logging.configure("tests", "WARNING")
    home: Path = tmp_path_factory.mktemp("home")
    # No executor answers previews here unless a test starts one: they give up after 2 s.
    running = await start_stack(
        await create_database(postgres_url, "autoloader_api"), home, preview_timeout_seconds=2.0
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="session")
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A webhook target on a loopback port that `loading_stack` allowlists (and no other loopback port)."""
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def loading_stack(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory, webhook_receiver: WebhookReceiver
) -> AsyncIterator[InProcessStack]:
    """A stack whose executor runs its pull loop with a real SparkSession (Iceberg on the same PostgreSQL).

    Its control service reads a clock the tests move forward (stack.clock) to drive schedules."""
    service_logging.configure("tests", "WARNING")
    home: Path = tmp_path_factory.mktemp("loading-home")
    running = await start_stack(
        postgres_url,
        home,
        with_worker=True,
        lease_seconds=10,
        clock=ShiftedClock(),
        webhook_allowlist=f"127.0.0.1:{webhook_receiver.port}",
    )
    try:
        yield running
    finally:
        await running.stop()
