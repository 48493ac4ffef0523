"""Previews in the `tracker` schema: queued by the control service, listed by an executor, then planned
with the SQL a run uses (services.tracker.planning) and forgotten, so nothing about the ingestion changes."""

from __future__ import annotations

import io
import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from services.tracker import planning, webhooks
from services.tracker.listing_cleanup import ListingCleanup
from services.tracker.listing_format import pack, with_listing_id
from services.tracker.models import FileEntry, FileSelection, Preview, PreviewResult

# A preview nobody took within this long is not taken any more (its caller has given up).
UNCLAIMED_TTL = "2 minutes"
# Answered previews are kept this long for the caller to read, then deleted.
KEEP = "10 minutes"


def _selection_json(selection: FileSelection) -> dict[str, Any]:
    return {
        "key_prefix": selection.key_prefix,
        "keys": list(selection.keys),
        "status": selection.status,
        "modified_after": selection.modified_after.isoformat() if selection.modified_after else None,
        "modified_before": selection.modified_before.isoformat() if selection.modified_before else None,
    }


def _selection_from_json(stored: dict[str, Any]) -> FileSelection:
    def moment(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    return FileSelection(
        key_prefix=stored["key_prefix"],
        keys=tuple(stored["keys"]),
        status=stored["status"],
        modified_after=moment(stored["modified_after"]),
        modified_before=moment(stored["modified_before"]),
    )


def _result_json(result: PreviewResult) -> dict[str, Any]:
    return {
        **{k: v for k, v in result.__dict__.items() if k != "files"},
        "files": [{**f.__dict__, "last_modified": f.last_modified.isoformat()} for f in result.files],
    }


def _result_from_json(stored: dict[str, Any]) -> PreviewResult:
    files = [{**f, "last_modified": datetime.fromisoformat(f["last_modified"])} for f in stored["files"]]
    return PreviewResult(**{**stored, "files": [FileEntry(**f) for f in files]})


class PreviewRepository:
    def __init__(self, pool: asyncpg.Pool, listings: ListingCleanup | None = None) -> None:
        self._pool = pool
        self._listings = listings or ListingCleanup(pool)

    async def create(
        self, ingestion_id: str, ingestion: dict[str, Any], page_size: int, clear: FileSelection | None = None
    ) -> str:
        preview_id = f"preview-{secrets.token_hex(6)}"
        await self._pool.execute(
            "INSERT INTO tracker.previews (preview_id, ingestion_id, ingestion, page_size, clear_selection, status)"
            " VALUES ($1, $2, $3, $4, $5, 'QUEUED')",
            preview_id,
            ingestion_id,
            json.dumps(webhooks.without_secret(ingestion)),  # a preview sends no webhook
            page_size,
            json.dumps(_selection_json(clear)) if clear is not None else None,
        )
        await self._pool.execute(f"DELETE FROM tracker.previews WHERE create_time < now() - interval '{KEEP}'")
        return preview_id

    async def get(self, preview_id: str) -> Preview | None:
        row = await self._pool.fetchrow(
            "SELECT preview_id, status, error, result FROM tracker.previews WHERE preview_id = $1", preview_id
        )
        if row is None:
            return None
        result = _result_from_json(json.loads(row["result"])) if row["result"] else None
        return Preview(preview_id=row["preview_id"], status=row["status"], error=row["error"], result=result)

    async def claim(self, executor_id: str) -> tuple[str, dict[str, Any]] | None:
        row = await self._pool.fetchrow(
            f"UPDATE tracker.previews SET status = 'RUNNING', executor_id = $1 WHERE preview_id = ("
            f"  SELECT preview_id FROM tracker.previews"
            f"  WHERE status = 'QUEUED' AND create_time > now() - interval '{UNCLAIMED_TTL}'"
            f"  ORDER BY create_time LIMIT 1 FOR UPDATE SKIP LOCKED)"
            f" RETURNING preview_id, ingestion",
            executor_id,
        )
        return (row["preview_id"], json.loads(row["ingestion"])) if row else None

    async def add_listing(self, preview_id: str, entries: Sequence[FileEntry], packed: bytes = b"") -> None:
        """A chunk of the preview's listing, kept with the runs' listings until the preview is answered."""
        lines = with_listing_id(packed, preview_id) + with_listing_id(pack(entries), preview_id)
        if lines:
            await self._pool.copy_to_table(
                "listings",
                schema_name="tracker",
                source=io.BytesIO(lines),
                columns=["run_id", "key", "etag", "size", "last_modified"],
                format="text",
            )

    async def complete(self, preview_id: str, *, table_exists: bool, error: str) -> None:
        """Plan the listed files as the next run would, store the answer, and drop the listing."""
        async with self._pool.acquire() as conn, conn.transaction():
            preview = await conn.fetchrow(
                "SELECT ingestion_id, ingestion, page_size, clear_selection FROM tracker.previews"
                " WHERE preview_id = $1 FOR UPDATE",
                preview_id,
            )
            if preview is None:
                return
            if error:
                await conn.execute(
                    "UPDATE tracker.previews SET status = 'FAILED', error = $2 WHERE preview_id = $1", preview_id, error
                )
            else:
                clear = preview["clear_selection"]
                result = await _plan(
                    conn,
                    preview_id,
                    preview["ingestion_id"],
                    json.loads(preview["ingestion"]),
                    page_size=preview["page_size"],
                    table_exists=table_exists,
                    clear=_selection_from_json(json.loads(clear)) if clear else None,
                )
                await conn.execute(
                    "UPDATE tracker.previews SET status = 'DONE', result = $2 WHERE preview_id = $1",
                    preview_id,
                    json.dumps(_result_json(result)),
                )
            self._listings.forget_later(preview_id)


def _limit(config: dict[str, Any], name: str, default: int) -> int:
    value = config.get(name)
    return int(float(value)) if value is not None else default


async def _plan(
    conn: asyncpg.Connection,
    preview_id: str,
    ingestion_id: str,
    config: dict[str, Any],
    *,
    page_size: int,
    table_exists: bool,
    clear: FileSelection | None,
) -> PreviewResult:
    limits = (
        _limit(config, "max_retries", 3),
        _limit(config, "max_files_per_run", 0),
        _limit(config, "max_bytes_per_run", 0),
    )
    arguments = (preview_id, ingestion_id, *limits)
    counts = await conn.fetchrow(planning.LISTING_COUNTS, preview_id, ingestion_id)
    await planning.prepare_for(conn, counts["discovered"])
    totals = await conn.fetchrow(
        f"SELECT count(*) FILTER (WHERE {planning.WITHIN_LIMITS}) AS next_files,"
        f" COALESCE(sum(size) FILTER (WHERE {planning.WITHIN_LIMITS}), 0) AS next_bytes,"
        f" count(*) AS pending_files, COALESCE(sum(size), 0) AS pending_bytes,"
        f" count(*) FILTER (WHERE {planning.WITHIN_LIMITS} AND EXISTS (SELECT 1 FROM tracker.cleared_files x"
        f"   WHERE x.ingestion_id = $2 AND x.key = c.key AND x.etag = c.etag)) AS loaded_before"
        f" FROM ({planning.CANDIDATES}) c",
        *arguments,
    )
    first = await conn.fetch(
        f"SELECT key, etag, size, last_modified, attempts FROM ({planning.CANDIDATES}) c"
        f" WHERE {planning.WITHIN_LIMITS} ORDER BY position LIMIT $6",
        *arguments,
        page_size,
    )
    reprocess = (0, 0)
    if clear is not None:
        # Listed files whose records the clear would remove: what it makes the next runs load again.
        conditions, values = clear.where(3)
        row = await conn.fetchrow(
            f"SELECT count(*), COALESCE(sum(l.size), 0) FROM tracker.listings l JOIN ("
            f"  SELECT key, etag FROM tracker.files WHERE ingestion_id = $2 AND status <> 'CLAIMED'{conditions}"
            f") f ON f.key = l.key AND f.etag = l.etag WHERE l.run_id = $1",
            preview_id,
            ingestion_id,
            *values,
        )
        reprocess = (int(row[0]), int(row[1]))
    active = await conn.fetchval(
        "SELECT run_id FROM tracker.runs WHERE ingestion_id = $1 AND status IN ('QUEUED', 'RUNNING')", ingestion_id
    )
    return PreviewResult(
        files_to_process=totals["next_files"],
        bytes_to_process=int(totals["next_bytes"]),
        files=[FileEntry(r["key"], r["etag"], r["size"], r["last_modified"], r["attempts"]) for r in first],
        files_pending=totals["pending_files"],
        bytes_pending=int(totals["pending_bytes"]),
        files_discovered=counts["discovered"],
        files_skipped=counts["skipped"],
        table_exists=table_exists,
        files_loaded_before=totals["loaded_before"],
        active_run_id=active or "",
        files_to_reprocess=reprocess[0],
        bytes_to_reprocess=reprocess[1],
    )
