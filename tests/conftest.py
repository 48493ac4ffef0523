from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from autoloader.stack.postgres import EmbeddedPostgres
from services.shared import logging as service_logging
from tests.support.stack import InProcessStack, start_stack


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


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessStack]:
    service_logging.configure("tests", "WARNING")
    home: Path = tmp_path_factory.mktemp("home")
    running = await start_stack(postgres_url, home)
    try:
        yield running
    finally:
        await running.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def loading_stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessStack]:
    """A stack whose executor runs its pull loop with a real SparkSession (Iceberg on the same PostgreSQL)."""
    service_logging.configure("tests", "WARNING")
    home: Path = tmp_path_factory.mktemp("loading-home")
    running = await start_stack(postgres_url, home, with_worker=True, lease_seconds=10)
    try:
        yield running
    finally:
        await running.stop()
