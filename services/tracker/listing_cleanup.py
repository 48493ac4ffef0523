"""Deletes a listing once it has been planned, after the planning transaction, so a large listing's delete
does not hold up the run; and sweeps listings that a stopped tracker left behind."""

from __future__ import annotations

import asyncio

import asyncpg

from services.shared.logging import get_logger

_log = get_logger("listings")


class ListingCleanup:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._pending: set[asyncio.Task[None]] = set()

    def forget_later(self, listing_id: str) -> None:
        task = asyncio.create_task(self._forget(listing_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _forget(self, listing_id: str) -> None:
        try:
            await self._pool.execute("DELETE FROM tracker.listings WHERE run_id = $1", listing_id)
        except Exception:  # left for the next sweep
            _log.warning("could not delete a planned listing", listing_id=listing_id, exc_info=True)

    async def sweep(self) -> None:
        """Listings of no run still listing and of no preview still answering (left by a stopped tracker)."""
        await self._pool.execute(
            "DELETE FROM tracker.listings l WHERE NOT EXISTS (SELECT 1 FROM tracker.runs r"
            "   WHERE r.run_id = l.run_id AND r.status = 'RUNNING' AND r.batch_seq IS NULL)"
            " AND NOT EXISTS (SELECT 1 FROM tracker.previews p WHERE p.preview_id = l.run_id AND p.status = 'RUNNING')"
        )

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
