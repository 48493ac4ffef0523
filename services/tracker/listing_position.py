"""Where a run's listing starts: the whole source, or only the keys after the greatest key tracked.

An incremental listing can miss a file whose key sorts before that point and lands later; a full listing
is due, and no run lists incrementally, when the ingestion
- was never listed whole, had processed files cleared since its last full listing (they must be found
  again), or its source's uri or pattern changed since,
- reached `full_listing_every_runs` (every Nth listing is full) or `full_listing_interval_seconds`,
- has files waiting that an incremental listing might not list again: pending ones (left by run limits) or
  failed ones with retries left (planning only takes files the listing found).

Clears and plans both lock the ingestion's state row first, so a plan either sees a clear entirely (its
deletions and its count) or not at all (and the next listing is full).
"""

from __future__ import annotations

from typing import Any

import asyncpg

DEFAULT_FULL_LISTING_EVERY_RUNS = 10

_START_AFTER = (
    "SELECT CASE WHEN s.full_listing_clears IS NULL OR s.clears > s.full_listing_clears"
    "   OR s.full_listing_source IS DISTINCT FROM $4 OR s.incremental_listings + 1 >= $2"
    "   OR ($3 > 0 AND s.full_listing_time < now() - make_interval(secs => $3))"
    "   OR EXISTS (SELECT 1 FROM tracker.pending_files p WHERE p.ingestion_id = $1)"
    "   OR EXISTS (SELECT 1 FROM tracker.files f WHERE f.ingestion_id = $1 AND f.status = 'FAILED')"
    " THEN NULL ELSE (SELECT max(f.key) FROM tracker.files f WHERE f.ingestion_id = $1) END"
    " FROM (SELECT 1) one LEFT JOIN tracker.ingestion_state s ON s.ingestion_id = $1"
)


def _number(value: Any, default: int) -> int:
    # The run's configuration went through google.protobuf.Struct: numbers arrive as floats.
    return int(float(value)) if value is not None else default


def _source_of(ingestion: dict[str, Any]) -> str:
    """What a listing depends on: the keys below the URI that match the pattern."""
    source = ingestion.get("source", {})
    return f"{source.get('uri', '')}\n{source.get('pattern', '')}"


async def start_after(conn: asyncpg.Connection, ingestion_id: str, ingestion: dict[str, Any]) -> str | None:
    """The key a run's listing starts after, or None for a full listing."""
    listing = ingestion.get("source", {}).get("listing", {})
    if listing.get("mode") != "incremental":
        return None
    every_runs = _number(listing.get("full_listing_every_runs"), DEFAULT_FULL_LISTING_EVERY_RUNS)
    interval = _number(listing.get("full_listing_interval_seconds"), 0)
    value = await conn.fetchval(_START_AFTER, ingestion_id, every_runs, float(interval), _source_of(ingestion))
    return str(value) if value is not None else None


async def record_listing(conn: asyncpg.Connection, run_id: str, ingestion_id: str) -> None:
    """Inside the planning transaction, before the records are read: count the run's listing, full or not.

    Locks the ingestion's state row, which a clear also locks first (see the module docstring)."""
    await conn.execute(
        "INSERT INTO tracker.ingestion_state (ingestion_id) VALUES ($1) ON CONFLICT (ingestion_id) DO NOTHING",
        ingestion_id,
    )
    await conn.execute(
        "UPDATE tracker.ingestion_state s SET"
        " full_listing_clears = CASE WHEN r.listing_start_after IS NULL THEN s.clears ELSE s.full_listing_clears END,"
        " full_listing_time = CASE WHEN r.listing_start_after IS NULL THEN r.listing_time ELSE s.full_listing_time END,"
        " incremental_listings = CASE WHEN r.listing_start_after IS NULL THEN 0 ELSE s.incremental_listings + 1 END,"
        " full_listing_source = CASE WHEN r.listing_start_after IS NULL THEN"
        "   COALESCE(r.ingestion->'source'->>'uri', '') || E'\\n' || COALESCE(r.ingestion->'source'->>'pattern', '')"
        "   ELSE s.full_listing_source END"
        " FROM tracker.runs r WHERE r.run_id = $1 AND s.ingestion_id = $2",
        run_id,
        ingestion_id,
    )


async def count_clear(conn: asyncpg.Connection, ingestion_id: str) -> None:
    """Inside a clear's transaction, before it deletes: the next listing of the ingestion is full."""
    await conn.execute(
        "INSERT INTO tracker.ingestion_state (ingestion_id, clears) VALUES ($1, 1)"
        " ON CONFLICT (ingestion_id) DO UPDATE SET clears = tracker.ingestion_state.clears + 1",
        ingestion_id,
    )
