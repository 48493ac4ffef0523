"""The SQL that decides what a run loads, shared by planning a run and previewing one, so a preview
answers exactly what the next run will do.

Parameters: $1 the listing's id (a run id or a preview id), $2 the ingestion id, $3 max_retries,
$4 max_files (0: no limit), $5 max_bytes (0: no limit).
"""

from __future__ import annotations

import asyncpg

# From this many listed files on, planning first gives the database fresh statistics of the listing: with
# none, it looks up each listed file in the records one by one (3.3 s for a million) instead of hashing (1 s).
LARGE_LISTING = 10_000

# Files in the listing, and those of them whose retries are exhausted. Skipped files are few: they are found
# through the status index and looked up in the listing, rather than joining the whole listing again.
LISTING_COUNTS = (
    "SELECT (SELECT count(*) FROM tracker.listings WHERE run_id = $1) AS discovered,"
    " (SELECT count(*) FROM tracker.files f WHERE f.ingestion_id = $2 AND f.status = 'SKIPPED' AND EXISTS"
    "   (SELECT 1 FROM tracker.listings l WHERE l.run_id = $1 AND l.key = f.key AND l.etag = f.etag)) AS skipped"
)

# New files (no record) and failed ones with retries left, oldest first, with their running totals. A file
# listed twice is taken once (the listing has no unique key; the candidates are few, so this is cheap).
CANDIDATES = (
    "SELECT key, etag, size, last_modified, attempts, is_new,"
    " row_number() OVER w AS position, sum(size) OVER w AS running_bytes FROM ("
    "  SELECT DISTINCT ON (l.key, l.etag) l.key, l.etag, l.size, l.last_modified,"
    "    COALESCE(f.attempts, 0) AS attempts, f.key IS NULL AS is_new"
    "  FROM tracker.listings l LEFT JOIN tracker.files f"
    "    ON f.ingestion_id = $2 AND f.key = l.key AND f.etag = l.etag"
    "  WHERE l.run_id = $1 AND (f.key IS NULL OR (f.status = 'FAILED' AND f.attempts <= $3))"
    "  ORDER BY l.key, l.etag"
    ") listed WINDOW w AS (ORDER BY last_modified, key, etag)"
)

# The candidates one run takes; the first is always taken, so one file larger than max_bytes cannot
# block the ingestion.
WITHIN_LIMITS = "($4 = 0 OR position <= $4) AND ($5 = 0 OR position = 1 OR running_bytes <= $5)"


async def prepare_for(conn: asyncpg.Connection, listed: int) -> None:
    """Inside the planning transaction: statistics and memory for the join of a large listing."""
    if listed >= LARGE_LISTING:
        await conn.execute("ANALYZE tracker.listings")
        await conn.execute("SET LOCAL work_mem = '64MB'")  # one in-memory hash table instead of batches on disk
