"""Tracker use cases and who may call them.

Users reach runs and files through the control service (which checks the ingestion and ownership) or,
for one run, directly. Executors call the lease/plan/finish side with a service token (admin role).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from services.shared.auth import Principal, Role
from services.shared.errors import Aborted, FieldViolation, InvalidArgument, NotFound
from services.shared.pagination import MAX_PAGE_SIZE, decode_page_token, encode_page_token, page_size_or_default
from services.tracker.delivery_repository import Delivery, DeliveryRepository
from services.tracker.metrics import TrackerMetrics
from services.tracker.models import (
    FILE_STATUSES,
    Batch,
    Claim,
    Cleared,
    FileEntry,
    FileFailure,
    FileSelection,
    Preview,
    ProcessedFile,
    Run,
)
from services.tracker.preview_repository import PreviewRepository
from services.tracker.repository import RunRepository
from services.tracker.work_signal import WorkSignal

MIN_LEASE_SECONDS = 5
MAX_LEASE_SECONDS = 3600
MAX_WAIT_MILLIS = 60_000


def _lease_seconds(value: int) -> int:
    if not MIN_LEASE_SECONDS <= value <= MAX_LEASE_SECONDS:
        raise InvalidArgument.of(
            [FieldViolation("lease_seconds", f"must be between {MIN_LEASE_SECONDS} and {MAX_LEASE_SECONDS}")]
        )
    return value


def _check_time_range(selection: FileSelection) -> None:
    after, before = selection.modified_after, selection.modified_before
    if after is not None and before is not None and after >= before:
        raise InvalidArgument.of([FieldViolation("modified_before_time", "must be later than modified_after_time")])


class TrackerService:
    def __init__(
        self,
        runs: RunRepository,
        previews: PreviewRepository,
        deliveries: DeliveryRepository,
        metrics: TrackerMetrics,
        work: WorkSignal,
    ) -> None:
        self._runs = runs
        self._previews = previews
        self._deliveries = deliveries
        self._metrics = metrics
        self._work = work

    async def create_run(self, caller: Principal, ingestion_id: str, ingestion: dict[str, Any], trigger: str) -> Run:
        caller.require(Role.EDITOR, "starting a run")
        table = str(ingestion.get("destination", {}).get("table", ""))
        if not ingestion_id or not table:
            raise InvalidArgument("ingestion: the run needs the ingestion's id and destination table")
        run = await self._runs.create_run(
            ingestion_id=ingestion_id,
            trigger=trigger or "manual",
            requested_by=caller.name,
            ingestion=ingestion,
            table=table,
        )
        await self._work.announce()
        return run

    async def get_run(self, caller: Principal, run_id: str) -> Run:
        run = await self._runs.get_run(run_id)
        if run is None:
            raise NotFound(f"run '{run_id}' not found")
        return run

    async def list_runs(
        self, caller: Principal, ingestion_id: str, page_size: int, page_token: str
    ) -> tuple[list[Run], str]:
        size = page_size_or_default(page_size)
        after = decode_page_token(page_token, 2)
        cursor = (datetime.fromisoformat(after[0]), after[1]) if after else None
        rows = await self._runs.list_runs(ingestion_id, cursor, size + 1)
        page = rows[:size]
        token = encode_page_token([page[-1].create_time.isoformat(), page[-1].run_id]) if len(rows) > size else ""
        return page, token

    async def list_files(
        self, caller: Principal, ingestion_id: str, selection: FileSelection, page_size: int, page_token: str
    ) -> tuple[list[ProcessedFile], str]:
        if selection.status and selection.status not in FILE_STATUSES:
            raise InvalidArgument.of([FieldViolation("status", f"must be one of {', '.join(FILE_STATUSES)}")])
        _check_time_range(selection)
        size = page_size_or_default(page_size)
        after = decode_page_token(page_token, 2)
        rows = await self._runs.list_files(ingestion_id, selection, (after[0], after[1]) if after else None, size + 1)
        page = rows[:size]
        token = encode_page_token([page[-1].key, page[-1].etag]) if len(rows) > size else ""
        return page, token

    async def clear_files(
        self, caller: Principal, ingestion_id: str, selection: FileSelection, *, dry_run: bool
    ) -> Cleared:
        caller.require(Role.EDITOR, "clearing processed files")
        # CLAIMED records belong to a run in progress and are never cleared.
        if selection.status and selection.status not in set(FILE_STATUSES) - {"CLAIMED"}:
            raise InvalidArgument.of([FieldViolation("status", "must be PROCESSED, FAILED or SKIPPED")])
        _check_time_range(selection)
        return await self._runs.clear_files(ingestion_id, selection, dry_run=dry_run)

    async def cancel_run(self, caller: Principal, run_id: str) -> Run:
        """Called by the control service once it checked the caller may act on the run's ingestion."""
        caller.require(Role.EDITOR, "cancelling runs")
        before = await self._runs.get_run(run_id)
        run = await self._runs.cancel_run(run_id, caller.name)
        if run is None:
            raise NotFound(f"run '{run_id}' not found")
        if before is not None and before.status == "QUEUED" and run.status == "CANCELLED":
            self._metrics.run_ended(run)
        if run.status not in ("QUEUED", "RUNNING", "CANCELLED") or not run.cancel_requested_by:
            raise Aborted(f"run '{run_id}' already ended ({run.status}); there is nothing to cancel")
        return run

    async def list_deliveries(
        self, caller: Principal, ingestion_id: str, page_size: int, page_token: str
    ) -> tuple[list[Delivery], str]:
        caller.require(Role.VIEWER, "listing webhook deliveries")
        size = page_size_or_default(page_size)
        after = decode_page_token(page_token, 2)
        cursor = (datetime.fromisoformat(after[0]), after[1]) if after else None
        rows = await self._deliveries.list(ingestion_id, cursor, size + 1)
        page = rows[:size]
        token = encode_page_token([page[-1].create_time.isoformat(), page[-1].delivery_id]) if len(rows) > size else ""
        return page, token

    # --- previews: the control service asks, an executor lists, the planning SQL answers ---------------

    async def create_preview(
        self,
        caller: Principal,
        ingestion_id: str,
        ingestion: dict[str, Any],
        page_size: int,
        clear: FileSelection | None = None,
    ) -> str:
        caller.require(Role.VIEWER, "previewing a run")
        if not ingestion_id:
            raise InvalidArgument.of([FieldViolation("ingestion_id", "is required")])
        if not 0 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidArgument.of([FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")])
        preview_id = await self._previews.create(ingestion_id, ingestion, page_size, clear)
        await self._work.announce()
        return preview_id

    async def get_preview(self, caller: Principal, preview_id: str) -> Preview:
        caller.require(Role.VIEWER, "reading a preview")
        preview = await self._previews.get(preview_id)
        if preview is None:
            raise NotFound(f"preview '{preview_id}' not found")
        return preview

    async def claim_preview(self, caller: Principal, executor_id: str) -> tuple[str, dict[str, Any]] | None:
        caller.require(Role.ADMIN, "claiming previews")
        return await self._previews.claim(executor_id)

    async def add_preview_listing(
        self, caller: Principal, preview_id: str, entries: Sequence[FileEntry], packed: bytes = b""
    ) -> None:
        caller.require(Role.ADMIN, "completing previews")
        await self._previews.add_listing(preview_id, entries, packed)

    async def complete_preview(self, caller: Principal, preview_id: str, *, table_exists: bool, error: str) -> None:
        caller.require(Role.ADMIN, "completing previews")
        await self._previews.complete(preview_id, table_exists=table_exists, error=error)

    async def table_schema(self, caller: Principal, ingestion_id: str) -> str:
        caller.require(Role.VIEWER, "reading ingestion state")
        return await self._runs.table_schema(ingestion_id)

    # --- executors -----------------------------------------------------------------------------------

    async def wait_for_work(self, caller: Principal, executor_id: str, timeout_millis: int) -> bool:
        """Wait until a run or preview may be waiting, at most timeout_millis; claims nothing."""
        caller.require(Role.ADMIN, "waiting for work")
        if not executor_id:
            raise InvalidArgument.of([FieldViolation("executor_id", "is required")])
        if not 0 <= timeout_millis <= MAX_WAIT_MILLIS:
            raise InvalidArgument.of([FieldViolation("timeout_millis", f"must be between 0 and {MAX_WAIT_MILLIS}")])
        return await self._work.wait(timeout_millis / 1000)

    async def claim_run(self, caller: Principal, executor_id: str, lease_seconds: int) -> Claim | None:
        caller.require(Role.ADMIN, "claiming runs")
        if not executor_id:
            raise InvalidArgument.of([FieldViolation("executor_id", "is required")])
        claim = await self._runs.claim_run(executor_id, _lease_seconds(lease_seconds))
        if claim is not None and claim.lease_epoch > 1:
            self._metrics.lease_takeovers.inc()
        return claim

    async def renew_lease(self, caller: Principal, run_id: str, lease_epoch: int, lease_seconds: int) -> bool:
        """Extend the lease; True when the run is to be cancelled."""
        caller.require(Role.ADMIN, "renewing leases")
        return await self._runs.renew_lease(run_id, lease_epoch, _lease_seconds(lease_seconds))

    async def register_files(
        self, caller: Principal, run_id: str, lease_epoch: int, chunks: AsyncIterator[bytes]
    ) -> int:
        """Store a run's listing, streamed in chunks of packed lines."""
        caller.require(Role.ADMIN, "registering files")
        return await self._runs.register_files(run_id, lease_epoch, chunks)

    async def plan_batch(
        self, caller: Principal, run_id: str, lease_epoch: int, max_files: int, max_bytes: int, max_retries: int
    ) -> tuple[Batch | None, int, int]:
        caller.require(Role.ADMIN, "planning batches")
        if max_files < 0 or max_bytes < 0 or max_retries < 0:
            raise InvalidArgument("max_files, max_bytes and max_retries must not be negative")
        return await self._runs.plan_batch(
            run_id, lease_epoch, max_files=max_files, max_bytes=max_bytes, max_retries=max_retries
        )

    async def finish_run(
        self,
        caller: Principal,
        run_id: str,
        lease_epoch: int,
        *,
        snapshot_id: int | None,
        rows_written: int,
        failures: Sequence[FileFailure],
        error: str,
        table_schema: str,
        refused: bool = False,
        cancelled: bool = False,
        commit_time: datetime | None = None,
    ) -> Run:
        caller.require(Role.ADMIN, "finishing runs")
        max_retries = await self._runs.max_retries_of(run_id)
        run = await self._runs.finish_run(
            run_id,
            lease_epoch,
            snapshot_id=snapshot_id,
            rows_written=rows_written,
            failures=failures,
            error=error,
            table_schema=table_schema,
            max_retries=max_retries,
            refused=refused,
            cancelled=cancelled,
            commit_time=commit_time,
        )
        self._metrics.run_ended(run)
        return run
