"""Due schedules and the record of their ticks, in the `control` schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.control.models import Ingestion
from services.control.repository import COLUMNS, ingestion_from_row
from services.shared.secret_box import SecretBox


@dataclass(frozen=True)
class TickRecord:
    ingestion_id: str
    tick_time: datetime
    outcome: str  # FIRED | SKIPPED | FAILED
    run_id: str
    missed_ticks: int
    detail: str
    handle_time: datetime


class DueSchedule:
    """One due ingestion, locked until the surrounding transaction ends: no other replica sees it meanwhile."""

    def __init__(self, conn: asyncpg.Connection, ingestion: Ingestion) -> None:
        self._conn = conn
        self.ingestion = ingestion

    async def record(self, tick: TickRecord, next_fire_time: datetime) -> None:
        await self._conn.execute(
            "INSERT INTO control.schedule_ticks"
            " (ingestion_id, tick_time, outcome, run_id, missed_ticks, detail, handle_time)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            tick.ingestion_id,
            tick.tick_time,
            tick.outcome,
            tick.run_id,
            tick.missed_ticks,
            tick.detail,
            tick.handle_time,
        )
        # update_time stays: moving the schedule on is not a change of the configuration.
        await self._conn.execute(
            "UPDATE control.ingestions SET next_fire_time = $2 WHERE ingestion_id = $1",
            tick.ingestion_id,
            next_fire_time,
        )


class ScheduleRepository:
    def __init__(self, pool: asyncpg.Pool, secret_box: SecretBox | None = None) -> None:
        # Without secret_box, webhook secrets stay encrypted: runs queued from here would carry them so.
        self._pool = pool
        self._secret_box = secret_box

    @asynccontextmanager
    async def due(self, now: datetime, limit: int) -> AsyncIterator[list[DueSchedule]]:
        """Enabled ingestions whose next fire time has come, locked (SKIP LOCKED: another replica handling
        one makes this one pass it by). Their ticks are recorded and next times moved in one transaction."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {COLUMNS} FROM control.ingestions"
                f" WHERE next_fire_time <= $1 AND enabled AND schedule IS NOT NULL"
                f" ORDER BY next_fire_time LIMIT $2 FOR UPDATE SKIP LOCKED",
                now,
                limit,
            )
            yield [DueSchedule(conn, ingestion_from_row(r, self._secret_box)) for r in rows]

    async def list_ticks(self, ingestion_id: str, after: tuple[datetime] | None, limit: int) -> list[TickRecord]:
        """Newest first; keyset on tick_time."""
        rows = await self._pool.fetch(
            "SELECT ingestion_id, tick_time, outcome, run_id, missed_ticks, detail, handle_time"
            " FROM control.schedule_ticks WHERE ingestion_id = $1 AND ($2::timestamptz IS NULL OR tick_time < $2)"
            " ORDER BY tick_time DESC LIMIT $3",
            ingestion_id,
            after[0] if after else None,
            limit,
        )
        return [TickRecord(**dict(r)) for r in rows]
