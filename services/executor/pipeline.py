"""One run, end to end: lease → list → plan (frozen) → load (staged, published once) → finish.

A run that was taken over arrives with its batch already planned and redoes exactly that batch; the
loader rolls forward whatever the earlier holder already published or staged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.executor import credentials, failpoints
from services.executor.discover import SourceAccess, SourceLimits, file_heads, list_source
from services.executor.load import BatchSpec, LoadResult, LoadStopped, TableLayout, TableLoader, short_error
from services.executor.merge_sql import MergeSpec
from services.executor.schema_policy import BatchRefused, SchemaSettings
from services.executor.tracker_client import ExecutorTrackerClient, batch_from_pb, ingestion_config
from services.shared.errors import Aborted, Unavailable
from services.shared.logging import get_logger
from services.tracker.models import Batch, FileEntry

_log = get_logger("pipeline")
LISTING_CHUNK = 5000
FINISH_ATTEMPTS = 8
EXIT_SPARK_LOST = 70
CANCEL_CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class RunConfig:
    """The parts of the ingestion configuration a run needs, read from the frozen copy on the run."""

    ingestion_id: str
    source_uri: str
    pattern: str
    file_format: str
    options: dict[str, str]
    endpoint_url: str
    region: str
    credentials_ref: str
    table: str
    max_retries: int
    max_files: int
    max_bytes: int
    settings: SchemaSettings
    layout: TableLayout
    merge: MergeSpec | None

    @classmethod
    def from_ingestion(cls, config: dict[str, Any]) -> RunConfig:
        source, destination = config.get("source", {}), config.get("destination", {})
        return cls(
            ingestion_id=str(config["ingestion_id"]),
            source_uri=str(source.get("uri", "")),
            pattern=str(source.get("pattern", "")),
            file_format=str(source.get("format", "")),
            options={str(k): str(v) for k, v in source.get("options", {}).items()},
            endpoint_url=str(source.get("endpoint_url", "")),
            region=str(source.get("region", "")),
            credentials_ref=str(source.get("credentials_ref", "")),
            table=str(destination.get("table", "")),
            # JSON numbers arrive as floats through google.protobuf.Struct.
            max_retries=int(float(config.get("max_retries", 3))),
            max_files=int(float(config.get("max_files_per_run", 0))),
            max_bytes=int(float(config.get("max_bytes_per_run", 0))),
            settings=SchemaSettings.from_config(config),
            layout=TableLayout(
                partition_by=tuple(str(t) for t in destination.get("partition_by", [])),
                properties={str(k): str(v) for k, v in destination.get("table_properties", {}).items()},
            ),
            merge=(
                MergeSpec(
                    keys=tuple(str(k) for k in destination.get("merge_keys", [])),
                    order_by=str(destination.get("merge_order_by", "")),
                )
                if destination.get("write_mode") == "merge"
                else None
            ),
        )

    def source_access(self, limits: SourceLimits) -> SourceAccess:
        access_key, secret_key = credentials.resolve(self.credentials_ref)
        return SourceAccess(self.endpoint_url or None, self.region or None, access_key, secret_key, limits)


class Lease:
    """Renews a run's lease in the background; `lost` tells the run to stop and publish nothing, and
    `cancel_requested` that someone asked to cancel it (on_cancel is called once, on a worker thread)."""

    def __init__(
        self,
        tracker: ExecutorTrackerClient,
        run_id: str,
        epoch: int,
        seconds: int,
        on_cancel: Callable[[], None] = lambda: None,
    ) -> None:
        self._tracker, self._run_id, self._epoch, self._seconds = tracker, run_id, epoch, seconds
        self._on_cancel = on_cancel
        self.lost = False
        self.cancel_requested = False
        self._task: asyncio.Task[None] | None = None

    async def _renew_forever(self) -> None:
        while True:
            # Often enough that a cancel request is seen within seconds, however long the lease.
            await asyncio.sleep(min(self._seconds / 3, CANCEL_CHECK_SECONDS))
            try:
                cancel = await self._tracker.renew_lease(self._run_id, self._epoch, self._seconds)
                if cancel and not self.cancel_requested:
                    self.cancel_requested = True
                    _log.info("cancel requested; stopping the run's Spark work")
                    await asyncio.to_thread(self._on_cancel)
            except Aborted:
                self.lost = True
                _log.warning("lease lost", run_id=self._run_id, lease_epoch=self._epoch)
                return
            except Exception:  # the tracker may be briefly unreachable; the lease outlives a few misses
                _log.warning("lease renewal failed", run_id=self._run_id, exc_info=True)

    async def __aenter__(self) -> Lease:
        self._task = asyncio.create_task(self._renew_forever())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class Listing:
    """The source listing, pulled in chunks on a worker thread so memory stays flat and the loop stays free.

    It feeds a gRPC request stream; an error there would surface as a cancelled call, so the listing keeps
    its error and ends the stream, and the caller raises it once the call returned.
    """

    def __init__(self, entries: Iterator[FileEntry]) -> None:
        self._entries = entries
        self.error: Exception | None = None

    async def chunks(self) -> AsyncIterator[list[FileEntry]]:
        try:
            while chunk := await asyncio.to_thread(lambda: list(itertools.islice(self._entries, LISTING_CHUNK))):
                yield chunk
        except Exception as error:
            self.error = error


def _discard(task: asyncio.Task[str]) -> None:
    """Cancel a task whose result is not needed, or read its error so that it is not reported as lost."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


class RunExecutor:
    def __init__(
        self,
        tracker: ExecutorTrackerClient,
        loader: TableLoader,
        *,
        lease_seconds: int = 30,
        limits: SourceLimits | None = None,
    ) -> None:
        self._tracker = tracker
        self._loader = loader
        self._lease_seconds = lease_seconds
        self._limits = limits or SourceLimits()  # where sources may lead

    async def execute(self, claim: tpb.ClaimRunResponse) -> None:
        """Run a claimed run to its end, or leave it for takeover when its outcome cannot be recorded safely.

        Rules that keep it exactly once: a batch that reached the table is never recorded as failed (it is
        rolled forward instead); when the tracker or Spark is unreachable the run is left RUNNING, its lease
        runs out, and whoever takes it over reconciles from what the table says.
        """
        run_id, epoch = claim.run.run_id, claim.lease_epoch
        # A cancel is honoured only for a batch this holder planned (or none yet). A batch planned by an
        # earlier holder is completed: that holder may still publish it, and only redoing the same batch
        # key keeps its rows from landing twice.
        own_batch = not claim.HasField("batch")
        loader = self._loader
        with structlog.contextvars.bound_contextvars(run_id=run_id, ingestion_id=claim.run.ingestion_id):
            async with Lease(self._tracker, run_id, epoch, self._lease_seconds, lambda: loader.cancel(run_id)) as lease:
                started = time.monotonic()
                failpoints.hit("after_lease")
                config, batch = None, None

                def stop_requested() -> bool:
                    return own_batch and (lease.cancel_requested or claim.run.cancel_requested)

                dropped_table: asyncio.Task[str] | None = None
                try:
                    config = RunConfig.from_ingestion(ingestion_config(claim))
                    if claim.HasField("batch"):
                        batch = batch_from_pb(claim.batch)
                    else:
                        # Looked up while the source is listed: if nothing turns out new, it is already known.
                        dropped_table = asyncio.create_task(self._dropped_table_schema(config))
                        batch = await self._plan(claim, config)
                    if stop_requested():
                        raise LoadStopped("cancelled before loading")
                    result = await self._load(claim, config, batch, stop_requested, dropped_table, fresh=own_batch)
                except Aborted:
                    _log.warning("run taken over by another executor; stopping", lease_epoch=epoch)
                    return
                except Unavailable as error:
                    _log.warning("tracker unreachable; the run is left for takeover", error=error.message)
                    return
                except Exception as error:
                    if stop_requested() and (
                        batch is None or config is None or not await self._published(config, batch)
                    ):
                        await self._cancelled(run_id, epoch)
                        return
                    if not await asyncio.to_thread(self._loader.healthy):
                        _log.critical("the Spark session is gone; exiting so the executor restarts", exc_info=error)
                        os._exit(EXIT_SPARK_LOST)
                    if config is None or batch is None or not await self._published(config, batch):
                        await self._fail(run_id, epoch, error)
                        return
                    _log.warning("error after the batch was published; rolling forward", error=short_error(error))
                    result = await self._load(claim, config, batch)
                finally:
                    if dropped_table is not None:
                        _discard(dropped_table)  # a batch was loaded instead (or the run stopped): not needed
                if lease.lost:
                    return
                run = await self._finish(run_id, epoch, result)
                if run is not None:
                    _log.info(
                        "run finished",
                        status=run.status,
                        rows=run.rows_written,
                        file_count=run.files_processed,
                        duration_ms=round((time.monotonic() - started) * 1000),
                    )

    async def _published(self, config: RunConfig, batch: Batch) -> bool:
        return await asyncio.to_thread(self._loader.published_snapshot, config.table, batch.batch_key) is not None

    async def _finish(self, run_id: str, epoch: int, result: LoadResult) -> tpb.Run | None:
        """Record the outcome, retrying while the tracker is unreachable; None if it never answered."""
        delay = 1.0
        for _ in range(FINISH_ATTEMPTS):
            try:
                failpoints.soon("inside_finalize")
                return await self._tracker.finish_run(
                    run_id,
                    epoch,
                    snapshot_id=result.snapshot_id,
                    rows_written=result.rows_written,
                    failures=result.failures,
                    error="",
                    table_schema=result.table_schema,
                    commit_millis=result.commit_millis,
                )
            except Aborted:
                _log.warning("run taken over before it was recorded; the new holder records it")
                return None
            except Unavailable as error:
                _log.warning("tracker unreachable while finishing; retrying", error=error.message, delay_s=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 16.0)
        _log.error("could not record the run; it is left for takeover")
        return None

    async def _plan(self, claim: tpb.ClaimRunResponse, config: RunConfig) -> Batch | None:
        run_id, epoch = claim.run.run_id, claim.lease_epoch
        # An incremental listing names the key it starts after; a full one lists the whole source.
        start_after = claim.incremental_listing.start_after if claim.HasField("incremental_listing") else None
        access = config.source_access(self._limits)
        listing = Listing(list_source(config.source_uri, config.pattern, access, start_after=start_after))
        listed = await self._tracker.register_files(run_id, epoch, listing.chunks())
        if listing.error is not None:
            raise listing.error
        failpoints.hit("after_listing")
        plan = await self._tracker.plan_batch(
            run_id, epoch, max_files=config.max_files, max_bytes=config.max_bytes, max_retries=config.max_retries
        )
        failpoints.hit("after_plan")
        _log.info(
            "planned",
            files_listed=listed,
            listing_start_after=start_after,
            file_count=len(plan.batch.files) if plan.HasField("batch") else 0,
        )
        return batch_from_pb(plan.batch) if plan.HasField("batch") else None

    async def _load(
        self,
        claim: tpb.ClaimRunResponse,
        config: RunConfig,
        batch: Batch | None,
        stop_requested: Callable[[], bool] = lambda: False,
        dropped_table: Awaitable[str] | None = None,
        *,
        fresh: bool = False,
    ) -> LoadResult:
        loader = self._loader
        if batch is None:
            # Nothing new: no Spark job. Re-create a dropped table from the remembered schema (DDL only).
            schema = await (dropped_table or self._dropped_table_schema(config))
            if schema:
                await asyncio.to_thread(loader.create_table, config.table, schema, config.layout)
            return LoadResult()
        access = config.source_access(self._limits)
        spec = BatchSpec(
            run_id=claim.run.run_id,
            batch_key=batch.batch_key,
            files_hash=batch.files_hash,
            files=batch.files,
            source_uri=config.source_uri,
            file_format=config.file_format,
            options=config.options,
            table=config.table,
            settings=config.settings,
            layout=config.layout,
            merge=config.merge,
            file_heads=lambda keys: file_heads(config.source_uri, keys, access),
            stop_requested=stop_requested,
            fresh=fresh,
        )
        with structlog.contextvars.bound_contextvars(batch_key=batch.batch_key, file_count=len(batch.files)):
            if config.source_uri.startswith("s3://"):
                await asyncio.to_thread(loader.configure_s3, config.source_uri, access)
            return await asyncio.to_thread(loader.load, spec)

    async def _dropped_table_schema(self, config: RunConfig) -> str:
        """The schema of the ingestion's last load when its table is gone (to re-create it), else ""."""
        schema = await self._tracker.table_schema(config.ingestion_id)
        if schema and not await asyncio.to_thread(self._loader.table_exists, config.table):
            return schema
        return ""

    async def _cancelled(self, run_id: str, epoch: int) -> None:
        _log.info("run cancelled; nothing was published")
        with contextlib.suppress(Aborted):  # taken over meanwhile: the new holder finishes the run
            await self._tracker.finish_run(
                run_id, epoch, snapshot_id=None, rows_written=0, failures=(), error="", table_schema="", cancelled=True
            )

    async def _fail(self, run_id: str, epoch: int, error: Exception) -> None:
        message = short_error(error)
        refused = isinstance(error, BatchRefused)
        if refused:  # the configuration said no: expected, and the message says it all
            _log.warning("run refused by the ingestion's configuration", error=message)
        else:
            _log.error("run failed", error=message, exc_info=error)
        with contextlib.suppress(Aborted):  # taken over meanwhile: the new holder finishes the run
            await self._tracker.finish_run(
                run_id,
                epoch,
                snapshot_id=None,
                rows_written=0,
                failures=(),
                error=message,
                table_schema="",
                refused=refused,
            )
