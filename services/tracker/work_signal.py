"""Wakes executors that wait for work (WaitForWork) when a run or a preview is queued.

A wait claims nothing: the executor claims next, with ClaimPreview / ClaimRun. So an executor that is paused
while it waits holds no run, and a run is never handed to a caller that may not be there to run it.

Within one tracker an event wakes the waiters at once; the other replicas hear of it through PostgreSQL
NOTIFY on CHANNEL (each tracker LISTENs, see services.shared.db.Listener).
"""

from __future__ import annotations

import asyncio

import asyncpg

from services.tracker.preview_repository import UNCLAIMED_TTL

CHANNEL = "autoloader_work"

# Work an executor would claim now: a queued run, a run whose lease ran out, a queued preview. Both use the
# partial indexes on claimable runs and queued previews.
_WORK_WAITING = (
    "SELECT EXISTS (SELECT 1 FROM tracker.runs"
    "   WHERE status = 'QUEUED' OR (status = 'RUNNING' AND lease_expires_at < now()))"
    f" OR EXISTS (SELECT 1 FROM tracker.previews WHERE status = 'QUEUED'"
    f"   AND create_time > now() - interval '{UNCLAIMED_TTL}')"
)


class WorkSignal:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queued = asyncio.Event()

    def wake(self) -> None:
        """Wake every waiter of this tracker. Each wait holds the event of its own generation, so a wake
        never gets lost between a check and a wait."""
        queued, self._queued = self._queued, asyncio.Event()
        queued.set()

    async def announce(self) -> None:
        """A run or preview was queued: wake the waiters here, and those of the other replicas."""
        self.wake()
        await self._pool.execute("SELECT pg_notify($1, '')", CHANNEL)

    async def wait(self, timeout: float) -> bool:
        """True as soon as work may be waiting; False after `timeout` seconds without any."""
        queued = self._queued
        # Work queued before this wait began woke nobody: look for it first.
        if await self._pool.fetchval(_WORK_WAITING):
            return True
        try:
            await asyncio.wait_for(queued.wait(), timeout)
        except TimeoutError:
            return False
        return True
