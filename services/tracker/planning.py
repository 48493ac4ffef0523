"""The SQL that decides what a run loads, shared by planning a run and previewing one, so a preview
answers exactly what the next run will do.

Parameters: $1 the listing's id (a run id or a preview id), $2 the ingestion id, $3 max_retries,
$4 max_files (0: no limit), $5 max_bytes (0: no limit).
"""

from __future__ import annotations

# Files in the listing, and those of them whose retries are exhausted.
LISTING_COUNTS = (
    "SELECT count(*) AS discovered, count(*) FILTER (WHERE f.status = 'SKIPPED') AS skipped"
    " FROM tracker.listings l LEFT JOIN tracker.files f"
    " ON f.ingestion_id = $2 AND f.key = l.key AND f.etag = l.etag WHERE l.run_id = $1"
)

# New files (no record) and failed ones with retries left, oldest first, with their running totals.
CANDIDATES = (
    "SELECT l.key, l.etag, l.size, l.last_modified, COALESCE(f.attempts, 0) AS attempts, f.key IS NULL AS is_new,"
    " row_number() OVER w AS position, sum(l.size) OVER w AS running_bytes"
    " FROM tracker.listings l LEFT JOIN tracker.files f"
    " ON f.ingestion_id = $2 AND f.key = l.key AND f.etag = l.etag"
    " WHERE l.run_id = $1 AND (f.key IS NULL OR (f.status = 'FAILED' AND f.attempts <= $3))"
    " WINDOW w AS (ORDER BY l.last_modified, l.key, l.etag)"
)

# The candidates one run takes; the first is always taken, so one file larger than max_bytes cannot
# block the ingestion.
WITHIN_LIMITS = "($4 = 0 OR position <= $4) AND ($5 = 0 OR position = 1 OR running_bytes <= $5)"
