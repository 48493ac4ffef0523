"""Runs, listings, processed-file records and batches in the `tracker` schema.

All lease checks use the database clock. Every call that acts for an executor is fenced by the run's
lease_epoch: a holder whose lease was taken over is refused and must stop.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from services.shared.errors import AlreadyExists, InvalidArgument, LeaseLost, NotFound
from services.shared.secret_box import SecretBox, rotate_all
from services.tracker import listing_position, planning, webhooks
from services.tracker.listing_cleanup import ListingCleanup
from services.tracker.listing_format import with_listing_id
from services.tracker.models import (
    Batch,
    Claim,
    Cleared,
    FileEntry,
    FileFailure,
    FileSelection,
    ProcessedFile,
    Run,
    batch_key,
    files_hash,
)

MIGRATIONS = Path(__file__).parent / "migrations"
_LISTING = ["run_id", "key", "etag", "size", "last_modified"]
SCHEMA = "tracker"

_RUN_COLUMNS = (
    "run_id, ingestion_id, status, trigger, requested_by, table_name, files_discovered, files_processed,"
    " files_failed, files_skipped, rows_written, bytes_processed, snapshot_id, batch_seq, error, create_time,"
    " start_time, end_time, executor_id, cancel_requested_by"
)
_FILE_COLUMNS = (
    "key, etag, size, last_modified, status, run_id, snapshot_id, attempts, error, update_time,"
    " discover_time, claim_time, process_time, commit_time"
)


def _run(row: asyncpg.Record) -> Run:
    return Run(
        run_id=row["run_id"],
        ingestion_id=row["ingestion_id"],
        status=row["status"],
        trigger=row["trigger"],
        requested_by=row["requested_by"],
        table=row["table_name"],
        files_discovered=row["files_discovered"],
        files_processed=row["files_processed"],
        files_failed=row["files_failed"],
        files_skipped=row["files_skipped"],
        rows_written=row["rows_written"],
        bytes_processed=row["bytes_processed"],
        snapshot_id=row["snapshot_id"],
        batch_seq=row["batch_seq"],
        error=row["error"],
        create_time=row["create_time"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        executor_id=row["executor_id"],
        cancel_requested_by=row["cancel_requested_by"],
    )


def _processed_file(row: asyncpg.Record) -> ProcessedFile:
    return ProcessedFile(**{name: row[name] for name in _FILE_COLUMNS.replace(",", " ").split()})


def _entry_json(entry: FileEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "etag": entry.etag,
        "size": entry.size,
        "last_modified": entry.last_modified.isoformat(),
        "attempts": entry.attempts,
    }


def _batch(ingestion_id: str, batch_seq: int, files_json: str, digest: str) -> Batch:
    files = [
        FileEntry(
            key=f["key"],
            etag=f["etag"],
            size=f["size"],
            last_modified=datetime.fromisoformat(f["last_modified"]),
            attempts=f["attempts"],
        )
        for f in json.loads(files_json)
    ]
    return Batch(batch_seq=batch_seq, batch_key=batch_key(ingestion_id, batch_seq), files=files, files_hash=digest)


class RunRepository:
    def __init__(self, pool: asyncpg.Pool, secret_box: SecretBox, listings: ListingCleanup | None = None) -> None:
        self._pool = pool
        self._secret_box = secret_box
        self._listings = listings or ListingCleanup(pool)

    # --- runs as users see them -------------------------------------------------------------------

    async def create_run(
        self, *, ingestion_id: str, trigger: str, requested_by: str, ingestion: dict[str, Any], table: str
    ) -> Run:
        run_id = f"run-{secrets.token_hex(6)}"
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO tracker.runs (run_id, ingestion_id, status, trigger, requested_by, ingestion, table_name)"
                f" VALUES ($1, $2, 'QUEUED', $3, $4, $5, $6) RETURNING {_RUN_COLUMNS}",
                run_id,
                ingestion_id,
                trigger,
                requested_by,
                json.dumps(webhooks.with_encrypted_secret(ingestion, self._secret_box)),
                table,
            )
        except asyncpg.UniqueViolationError as e:
            active = await self._pool.fetchrow(
                "SELECT run_id, status FROM tracker.runs WHERE ingestion_id = $1 AND status IN ('QUEUED', 'RUNNING')",
                ingestion_id,
            )
            detail = f"{active['run_id']} ({active['status']})" if active else "another run"
            raise AlreadyExists(f"ingestion '{ingestion_id}' already has an active run: {detail}") from e
        return _run(row)

    async def get_run(self, run_id: str) -> Run | None:
        row = await self._pool.fetchrow(f"SELECT {_RUN_COLUMNS} FROM tracker.runs WHERE run_id = $1", run_id)
        return _run(row) if row else None

    async def list_runs(self, ingestion_id: str, after: tuple[datetime, str] | None, limit: int) -> list[Run]:
        """Newest first; keyset on (create_time, run_id)."""
        if after is None:
            rows = await self._pool.fetch(
                f"SELECT {_RUN_COLUMNS} FROM tracker.runs WHERE ingestion_id = $1"
                f" ORDER BY create_time DESC, run_id DESC LIMIT $2",
                ingestion_id,
                limit,
            )
        else:
            rows = await self._pool.fetch(
                f"SELECT {_RUN_COLUMNS} FROM tracker.runs WHERE ingestion_id = $1 AND (create_time, run_id) < ($2, $3)"
                f" ORDER BY create_time DESC, run_id DESC LIMIT $4",
                ingestion_id,
                after[0],
                after[1],
                limit,
            )
        return [_run(r) for r in rows]

    async def list_files(
        self, ingestion_id: str, selection: FileSelection, after: tuple[str, str] | None, limit: int
    ) -> list[ProcessedFile]:
        """The selected records, ordered by (key, etag)."""
        after_key, after_etag = after or ("", "")
        conditions, values = selection.where(5)
        rows = await self._pool.fetch(
            f"SELECT {_FILE_COLUMNS} FROM tracker.files WHERE ingestion_id = $1"
            f" AND (key, etag) > ($2, $3){conditions} ORDER BY key, etag LIMIT $4",
            ingestion_id,
            after_key,
            after_etag,
            limit,
            *values,
        )
        return [_processed_file(r) for r in rows]

    async def clear_files(self, ingestion_id: str, selection: FileSelection, *, dry_run: bool) -> Cleared:
        """Forget the selected records of the ingestion, except the files a run in progress has claimed; with
        dry_run only count them."""
        conditions, values = selection.where(2)
        selected = f"FROM tracker.files WHERE ingestion_id = $1 AND status <> 'CLAIMED'{conditions}"
        if dry_run:
            row = await self._pool.fetchrow(
                f"SELECT count(*), COALESCE(sum(size), 0) {selected}", ingestion_id, *values
            )
        else:
            async with self._pool.acquire() as conn, conn.transaction():
                await listing_position.count_clear(conn, ingestion_id)
                row = await self._delete_files(conn, selected, ingestion_id, values)
        return Cleared(files=int(row[0]), bytes=int(row[1]))

    @staticmethod
    async def _delete_files(
        conn: asyncpg.Connection, selected: str, ingestion_id: str, values: Sequence[Any]
    ) -> asyncpg.Record:
        # Loaded files are remembered as such, so a preview can warn before they are loaded again.
        row: asyncpg.Record = await conn.fetchrow(
            f"WITH gone AS (DELETE {selected} RETURNING key, etag, size, status, snapshot_id),"
            f" remembered AS (INSERT INTO tracker.cleared_files (ingestion_id, key, etag, snapshot_id)"
            f"   SELECT $1, key, etag, snapshot_id FROM gone WHERE status = 'PROCESSED'"
            f"   ON CONFLICT (ingestion_id, key, etag) DO UPDATE SET snapshot_id = excluded.snapshot_id,"
            f"   clear_time = excluded.clear_time)"
            f" SELECT count(*), COALESCE(sum(size), 0) FROM gone",
            ingestion_id,
            *values,
        )
        return row

    async def cancel_run(self, run_id: str, requested_by: str) -> Run | None:
        """A queued run ends CANCELLED at once (nothing was claimed yet); a running one is flagged for its
        executor. An ended run is returned as it is. None when there is no such run."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"UPDATE tracker.runs SET cancel_requested_by = $2,"
                f" status = CASE WHEN status = 'QUEUED' THEN 'CANCELLED' ELSE status END,"
                f" end_time = CASE WHEN status = 'QUEUED' THEN clock_timestamp() ELSE end_time END,"
                f" error = CASE WHEN status = 'QUEUED' THEN $3 ELSE error END"
                f" WHERE run_id = $1 AND status IN ('QUEUED', 'RUNNING') RETURNING {_RUN_COLUMNS}",
                run_id,
                requested_by,
                f"cancelled by {requested_by} before it started",
            )
            if row is not None and row["status"] == "CANCELLED":
                await webhooks.enqueue(conn, _run(row), self._secret_box)
            if row is None:
                row = await conn.fetchrow(f"SELECT {_RUN_COLUMNS} FROM tracker.runs WHERE run_id = $1", run_id)
            return _run(row) if row else None

    async def table_schema(self, ingestion_id: str) -> str:
        value = await self._pool.fetchval(
            "SELECT table_schema FROM tracker.ingestion_state WHERE ingestion_id = $1", ingestion_id
        )
        return str(value or "")

    # --- the executor's side: lease, list, plan, finish -----------------------------------------------

    async def claim_run(self, executor_id: str, lease_seconds: int) -> Claim | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"UPDATE tracker.runs r SET status = 'RUNNING', lease_owner = $1, executor_id = $1,"
                f" lease_epoch = r.lease_epoch + 1,"
                f" lease_expires_at = now() + make_interval(secs => $2), start_time = COALESCE(r.start_time, now())"
                f" WHERE r.run_id = ("
                f"   SELECT run_id FROM tracker.runs"
                f"   WHERE status = 'QUEUED' OR (status = 'RUNNING' AND lease_expires_at < now())"
                f"   ORDER BY create_time LIMIT 1 FOR UPDATE SKIP LOCKED)"
                f" RETURNING {_RUN_COLUMNS}, lease_epoch, ingestion",
                executor_id,
                float(lease_seconds),
            )
            if row is None:
                return None
            run = _run(row)
            # A listing left by an earlier holder is incomplete or stale: the new holder lists again.
            await conn.execute("DELETE FROM tracker.listings WHERE run_id = $1", run.run_id)
            batch, start_after = None, None
            # The executor sends no webhook: its copy of the configuration has no secret.
            ingestion = webhooks.without_secret(json.loads(row["ingestion"]))
            if run.batch_seq is not None:
                stored = await conn.fetchrow(
                    "SELECT files, files_hash FROM tracker.batches WHERE ingestion_id = $1 AND batch_seq = $2",
                    run.ingestion_id,
                    run.batch_seq,
                )
                batch = _batch(run.ingestion_id, run.batch_seq, stored["files"], stored["files_hash"])
            else:
                start_after = await listing_position.start_after(conn, run.ingestion_id, ingestion)
                await conn.execute(
                    "UPDATE tracker.runs SET listing_start_after = $2, listing_time = now() WHERE run_id = $1",
                    run.run_id,
                    start_after,
                )
            return Claim(
                run=run,
                lease_epoch=row["lease_epoch"],
                ingestion=ingestion,
                batch=batch,
                listing_start_after=start_after,
            )

    async def renew_lease(self, run_id: str, lease_epoch: int, lease_seconds: int) -> bool:
        """Extend the lease; True when someone asked to cancel the run."""
        cancel_requested_by = await self._pool.fetchval(
            "UPDATE tracker.runs SET lease_expires_at = now() + make_interval(secs => $3)"
            " WHERE run_id = $1 AND lease_epoch = $2 AND status = 'RUNNING' RETURNING cancel_requested_by",
            run_id,
            lease_epoch,
            float(lease_seconds),
        )
        if cancel_requested_by is None:
            raise LeaseLost(f"lease on {run_id} lost (epoch {lease_epoch}); stop without publishing")
        return bool(cancel_requested_by)

    async def _fenced_run(self, conn: asyncpg.Connection, run_id: str, lease_epoch: int) -> asyncpg.Record:
        row = await conn.fetchrow(
            "SELECT run_id, ingestion_id, status, lease_epoch, batch_seq FROM tracker.runs"
            " WHERE run_id = $1 FOR UPDATE",
            run_id,
        )
        if row is None:
            raise NotFound(f"run '{run_id}' not found")
        if row["status"] != "RUNNING" or row["lease_epoch"] != lease_epoch:
            raise LeaseLost(f"lease on {run_id} lost (epoch {lease_epoch}); stop without publishing")
        return row

    async def register_files(self, run_id: str, lease_epoch: int, chunks: AsyncIterator[bytes]) -> int:
        """Load a run's listing (chunks of packed lines, see listing_format) with one COPY, in one transaction.

        The lease is checked before, and again, with the run's row locked, before committing: a holder that
        lost the run meanwhile adds nothing to the new holder's listing (a takeover deletes the listing when
        it claims, so rows committed after it would be stale)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await self._check_lease(conn, run_id, lease_epoch)

            async def lines() -> AsyncIterator[bytes]:
                async for chunk in chunks:
                    yield with_listing_id(chunk, run_id)

            try:
                result: str = await conn.copy_to_table(
                    "listings", schema_name="tracker", source=lines(), columns=_LISTING, format="text"
                )
            except (asyncpg.DataError, asyncpg.BadCopyFileFormatError) as e:
                raise InvalidArgument(f"packed_files: {e}") from e
            await self._fenced_run(conn, run_id, lease_epoch)
            return int(result.split()[-1])

    async def _check_lease(self, conn: asyncpg.Connection, run_id: str, lease_epoch: int) -> None:
        held = await conn.fetchval(
            "SELECT status = 'RUNNING' AND lease_epoch = $2 FROM tracker.runs WHERE run_id = $1", run_id, lease_epoch
        )
        if held is None:
            raise NotFound(f"run '{run_id}' not found")
        if not held:
            raise LeaseLost(f"lease on {run_id} lost (epoch {lease_epoch}); stop without publishing")

    async def plan_batch(
        self, run_id: str, lease_epoch: int, *, max_files: int, max_bytes: int, max_retries: int
    ) -> tuple[Batch | None, int, int]:
        """Freeze the run's batch in one transaction; return (batch or None, files listed, files skipped)."""
        async with self._pool.acquire() as conn, conn.transaction():
            run = await self._fenced_run(conn, run_id, lease_epoch)
            ingestion_id = run["ingestion_id"]
            if run["batch_seq"] is not None:  # planned before: never re-plan, return the same batch
                stored = await conn.fetchrow(
                    "SELECT b.files, b.files_hash, r.files_discovered, r.files_skipped FROM tracker.batches b"
                    " JOIN tracker.runs r ON r.run_id = b.run_id WHERE b.ingestion_id = $1 AND b.batch_seq = $2",
                    ingestion_id,
                    run["batch_seq"],
                )
                batch = _batch(ingestion_id, run["batch_seq"], stored["files"], stored["files_hash"])
                return batch, stored["files_discovered"], stored["files_skipped"]
            await listing_position.record_listing(conn, run_id, ingestion_id)
            counts = await conn.fetchrow(planning.LISTING_COUNTS, run_id, ingestion_id)
            await planning.prepare_for(conn, counts["discovered"])
            # The batch (a plain SELECT: the database may join a large listing in parallel).
            rows = await conn.fetch(
                f"SELECT key, etag, size, last_modified, attempts, waiting FROM ("
                f"  SELECT c.*, count(*) OVER () AS waiting FROM ({planning.CANDIDATES}) c"
                f") x WHERE {planning.WITHIN_LIMITS} ORDER BY position",
                run_id,
                ingestion_id,
                max_retries,
                max_files,
                max_bytes,
            )
            if rows and rows[0]["waiting"] > len(rows):
                # Run limits left files for later: the new ones wait as pending, keeping their discovery time.
                await conn.execute(
                    f"INSERT INTO tracker.pending_files (ingestion_id, key, etag, size, last_modified)"
                    f" SELECT $2, key, etag, size, last_modified FROM ({planning.CANDIDATES}) c"
                    f" WHERE is_new AND NOT ({planning.WITHIN_LIMITS}) ON CONFLICT DO NOTHING",
                    run_id,
                    ingestion_id,
                    max_retries,
                    max_files,
                    max_bytes,
                )
            # Files that left the source are no longer waiting.
            await conn.execute(
                "DELETE FROM tracker.pending_files p WHERE p.ingestion_id = $2 AND NOT EXISTS"
                " (SELECT 1 FROM tracker.listings l WHERE l.run_id = $1 AND l.key = p.key AND l.etag = p.etag)",
                run_id,
                ingestion_id,
            )
            self._listings.forget_later(run_id)  # after this transaction: the listing is not needed again
            await conn.execute(
                "UPDATE tracker.runs SET files_discovered = $2, files_skipped = $3 WHERE run_id = $1",
                run_id,
                counts["discovered"],
                counts["skipped"],
            )
            if not rows:
                return None, counts["discovered"], counts["skipped"]
            files = [FileEntry(r["key"], r["etag"], r["size"], r["last_modified"], r["attempts"]) for r in rows]
            batch_seq = await conn.fetchval(
                "INSERT INTO tracker.ingestion_state (ingestion_id, next_batch_seq) VALUES ($1, 2)"
                " ON CONFLICT (ingestion_id) DO UPDATE SET next_batch_seq = tracker.ingestion_state.next_batch_seq + 1"
                " RETURNING next_batch_seq - 1",
                ingestion_id,
            )
            digest = files_hash(files)
            await conn.execute(
                "INSERT INTO tracker.batches (ingestion_id, batch_seq, run_id, files, files_hash)"
                " VALUES ($1, $2, $3, $4, $5)",
                ingestion_id,
                batch_seq,
                run_id,
                json.dumps([_entry_json(f) for f in files]),
                digest,
            )
            taken = await conn.fetch(
                "DELETE FROM tracker.pending_files WHERE ingestion_id = $1 AND (key, etag) IN"
                " (SELECT * FROM unnest($2::text[], $3::text[])) RETURNING key, etag, discover_time",
                ingestion_id,
                [f.key for f in files],
                [f.etag for f in files],
            )
            discovered = {(r["key"], r["etag"]): r["discover_time"] for r in taken}
            await conn.executemany(
                "INSERT INTO tracker.files (ingestion_id, key, etag, size, last_modified, status, run_id, batch_seq,"
                " discover_time, claim_time) VALUES ($1, $2, $3, $4, $5, 'CLAIMED', $6, $7,"
                " COALESCE($8, clock_timestamp()), clock_timestamp())"
                " ON CONFLICT (ingestion_id, key, etag) DO UPDATE SET status = 'CLAIMED', run_id = excluded.run_id,"
                " batch_seq = excluded.batch_seq, claim_time = excluded.claim_time, process_time = NULL,"
                " update_time = clock_timestamp()",
                [
                    (
                        ingestion_id,
                        f.key,
                        f.etag,
                        f.size,
                        f.last_modified,
                        run_id,
                        batch_seq,
                        discovered.get((f.key, f.etag)),
                    )
                    for f in files
                ],
            )
            await conn.execute("UPDATE tracker.runs SET batch_seq = $2 WHERE run_id = $1", run_id, batch_seq)
            return (
                Batch(batch_seq, batch_key(ingestion_id, batch_seq), files, digest),
                counts["discovered"],
                counts["skipped"],
            )

    async def finish_run(
        self,
        run_id: str,
        lease_epoch: int,
        *,
        snapshot_id: int | None,
        rows_written: int,
        failures: Sequence[FileFailure],
        error: str,
        table_schema: str,
        max_retries: int,
        refused: bool = False,
        cancelled: bool = False,
        commit_time: datetime | None = None,
    ) -> Run:
        """Record every file's outcome and end the run, in one transaction.

        A failure costs each failed file an attempt, unless the configuration refused the batch (refused).
        A cancelled run committed nothing: its files go back to how they were before it claimed them.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            run = await self._fenced_run(conn, run_id, lease_epoch)
            if cancelled:
                return await self._end_cancelled(conn, run_id)
            ingestion_id, batch_seq = run["ingestion_id"], run["batch_seq"]
            processed = failed = bytes_processed = 0
            if batch_seq is not None:
                failed_by_file = {(f.key, f.etag): f.error for f in failures}
                stored = await conn.fetchval(
                    "SELECT files FROM tracker.batches WHERE ingestion_id = $1 AND batch_seq = $2",
                    ingestion_id,
                    batch_seq,
                )
                outcomes = []
                for entry in json.loads(stored):
                    file_error = error or failed_by_file.get((entry["key"], entry["etag"]), "")
                    outcomes.append((entry["key"], entry["etag"], file_error))
                    if file_error:
                        failed += 1
                    else:
                        processed += 1
                        bytes_processed += entry["size"]
                cost = 0 if refused else 1
                keys = [key for key, _, _ in outcomes]
                etags = [etag for _, etag, _ in outcomes]
                errors = [message for _, _, message in outcomes]
                # One statement for the whole batch: a statement per file took 2.5 s at 10,000 files.
                await conn.execute(
                    "UPDATE tracker.files AS f SET"
                    " status = CASE WHEN o.error = '' THEN 'PROCESSED'"
                    "   WHEN f.attempts + $6 >= $5 THEN 'SKIPPED' ELSE 'FAILED' END,"
                    " snapshot_id = CASE WHEN o.error = '' THEN $4::bigint ELSE f.snapshot_id END,"
                    " commit_time = CASE WHEN o.error = '' THEN $7::timestamptz ELSE f.commit_time END,"
                    " attempts = CASE WHEN o.error = '' THEN f.attempts ELSE f.attempts + $6 END,"
                    " error = o.error, process_time = clock_timestamp(), update_time = clock_timestamp()"
                    " FROM unnest($2::text[], $3::text[], $8::text[]) AS o(key, etag, error)"
                    " WHERE f.ingestion_id = $1 AND f.key = o.key AND f.etag = o.etag",
                    # A file that has now failed max_retries + 1 times is not tried again.
                    ingestion_id,
                    keys,
                    etags,
                    snapshot_id,
                    max_retries + 1,
                    cost,
                    commit_time,
                    errors,
                )
            if error or (failed and not processed):
                status = "FAILED"
            elif failed:
                status = "PARTIAL_SUCCESS"
            else:
                status = "SUCCESS"
            summary = error or (f"{failed} file(s) could not be read; see the processed files" if failed else "")
            if table_schema:
                await conn.execute(
                    "INSERT INTO tracker.ingestion_state (ingestion_id, table_schema) VALUES ($1, $2)"
                    " ON CONFLICT (ingestion_id) DO UPDATE SET table_schema = excluded.table_schema",
                    ingestion_id,
                    table_schema,
                )
            row = await conn.fetchrow(
                f"UPDATE tracker.runs SET status = $2, files_processed = $3, files_failed = $4, rows_written = $5,"
                f" bytes_processed = $6, snapshot_id = $7, error = $8, end_time = clock_timestamp(),"
                f" lease_owner = NULL, lease_expires_at = NULL WHERE run_id = $1 RETURNING {_RUN_COLUMNS}",
                run_id,
                status,
                processed,
                failed,
                rows_written if processed else 0,
                bytes_processed,
                snapshot_id,
                summary,
            )
            ended = _run(row)
            await webhooks.enqueue(conn, ended, self._secret_box)
            return ended

    async def _end_cancelled(self, conn: asyncpg.Connection, run_id: str) -> Run:
        # Claimed files were new (no attempt yet: pending again, as discovered) or failed before (FAILED again).
        await conn.execute(
            "WITH released AS (DELETE FROM tracker.files WHERE run_id = $1 AND status = 'CLAIMED' AND attempts = 0"
            "   RETURNING ingestion_id, key, etag, size, last_modified, discover_time)"
            " INSERT INTO tracker.pending_files SELECT ingestion_id, key, etag, size, last_modified,"
            "   COALESCE(discover_time, clock_timestamp()) FROM released ON CONFLICT DO NOTHING",
            run_id,
        )
        await conn.execute(
            "UPDATE tracker.files SET status = 'FAILED', update_time = clock_timestamp()"
            " WHERE run_id = $1 AND status = 'CLAIMED'",
            run_id,
        )
        row = await conn.fetchrow(
            f"UPDATE tracker.runs SET status = 'CANCELLED', end_time = clock_timestamp(),"
            f" error = 'cancelled by ' || cancel_requested_by || '; nothing was committed',"
            f" lease_owner = NULL, lease_expires_at = NULL WHERE run_id = $1 RETURNING {_RUN_COLUMNS}",
            run_id,
        )
        ended = _run(row)
        await webhooks.enqueue(conn, ended, self._secret_box)
        return ended

    async def max_retries_of(self, run_id: str) -> int:
        value = await self._pool.fetchval(
            "SELECT COALESCE((ingestion->>'max_retries')::numeric::int, 3) FROM tracker.runs WHERE run_id = $1", run_id
        )
        return int(value if value is not None else 3)

    async def rotate_secrets(self) -> int:
        """Re-encrypt under the first key the webhook secrets of active runs' configurations that are not
        (legacy plaintext included); ended runs and previews keep none (older rows lose theirs here). Safe with
        replicas doing the same at once; a second call changes nothing."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE tracker.runs SET ingestion = ingestion #- '{webhook,secret}'"
                " WHERE status NOT IN ('QUEUED', 'RUNNING') AND ingestion->'webhook' ? 'secret'"
            )
            await conn.execute(
                "UPDATE tracker.previews SET ingestion = ingestion #- '{webhook,secret}'"
                " WHERE ingestion->'webhook' ? 'secret'"
            )
            rows = await conn.fetch(
                "SELECT run_id, ingestion->'webhook'->>'secret' AS secret FROM tracker.runs"
                " WHERE status IN ('QUEUED', 'RUNNING') AND ingestion->'webhook'->>'secret' <> ''"
            )

        async def write(run_id: str, new: str, old: str) -> bool:
            result: str = await self._pool.execute(
                "UPDATE tracker.runs SET ingestion = jsonb_set(ingestion, '{webhook,secret}', to_jsonb($2::text))"
                " WHERE run_id = $1 AND ingestion->'webhook'->>'secret' = $3",
                run_id,
                new,
                old,
            )
            return result.endswith(" 1")

        return await rotate_all(self._secret_box, [(r["run_id"], r["secret"]) for r in rows], write)
