"""PostgreSQL connection pools and the schema migration runner."""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


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
