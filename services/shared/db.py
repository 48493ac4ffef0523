"""PostgreSQL connection pools, LISTEN connections and the schema migration runner."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from pathlib import Path

import asyncpg

from services.shared.logging import get_logger

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_log = get_logger("db")
LISTEN_RETRY_SECONDS = 2.0


async def create_pool(database_url: str, *, service: str, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        server_settings={"application_name": f"autoloader-{service}"},
    )
    assert pool is not None
    return pool


def _migration_files(directory: Path) -> list[tuple[int, Path]]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file name must look like 0001_name.sql: {path}")
        files.append((int(match.group(1)), path))
    return files


async def apply_migrations(pool: asyncpg.Pool, schema: str, directory: Path) -> int:
    """Apply the not-yet-applied NNNN_*.sql files of one schema, in order; return the schema version.

    A transaction-scoped advisory lock makes concurrent starts of several replicas safe.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"autoloader.migrate.{schema}")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_time timestamptz NOT NULL DEFAULT now())"
        )
        applied = {r["version"] for r in await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')}
        for version, path in _migration_files(directory):
            if version in applied:
                continue
            await conn.execute(f'SET LOCAL search_path TO "{schema}"')
            await conn.execute(path.read_text())
            await conn.execute(
                f'INSERT INTO "{schema}".schema_migrations (version, name) VALUES ($1, $2)', version, path.name
            )
            applied.add(version)
        return max(applied, default=0)


class Listener:
    """A connection of its own that LISTENs on a channel and calls on_notify for each notification.

    It reconnects after losing the database, calling on_notify once it is back (a notification sent while it
    was away is lost, so whoever waits for one should check again)."""

    def __init__(self, database_url: str, channel: str, on_notify: Callable[[], None], *, service: str) -> None:
        self._url, self._channel, self._on_notify, self._service = database_url, channel, on_notify, service
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._hold(), name=f"listen-{self._channel}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _hold(self) -> None:
        while True:
            try:
                connection = await asyncpg.connect(
                    self._url, server_settings={"application_name": f"autoloader-{self._service}-listen"}
                )
            except (OSError, asyncpg.PostgresError):
                _log.warning("cannot LISTEN; retrying", channel=self._channel, exc_info=True)
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
                continue
            lost = asyncio.Event()
            try:
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(self._channel, lambda *_: self._on_notify())
                self._on_notify()
                await lost.wait()
                _log.warning("LISTEN connection lost; reconnecting", channel=self._channel)
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)
