"""One run, end to end: lease → list → plan (frozen) → load (staged, published once) → finish.

A run that was taken over arrives with its batch already planned and redoes exactly that batch; the
loader rolls forward whatever the earlier holder already published or staged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.executor import credentials, failpoints
from services.executor.discover import S3Access, list_source
from services.executor.load import BatchSpec, LoadResult, TableLoader, short_error
from services.executor.tracker_client import ExecutorTrackerClient, batch_from_pb, ingestion_config
from services.shared.errors import Aborted
from services.shared.logging import get_logger
from services.tracker.models import Batch, FileEntry

_log = get_logger("pipeline")
LISTING_CHUNK = 5000


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
        )

    def s3_access(self) -> S3Access:
        access_key, secret_key = credentials.resolve(self.credentials_ref)
        return S3Access(self.endpoint_url or None, self.region or None, access_key, secret_key)


class Lease:
    """Renews a run's lease in the background; `lost` tells the run to stop and publish nothing."""

    def __init__(self, tracker: ExecutorTrackerClient, run_id: str, epoch: int, seconds: int) -> None:
        self._tracker, self._run_id, self._epoch, self._seconds = tracker, run_id, epoch, seconds
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._seconds / 3)
            try:
                await self._tracker.renew_lease(self._run_id, self._epoch, self._seconds)
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


async def _chunks(entries: Iterator[FileEntry]) -> AsyncIterator[list[FileEntry]]:
    """Pull the listing in chunks on a worker thread, so memory stays flat and the loop stays free."""
    while True:
        chunk = await asyncio.to_thread(lambda: list(itertools.islice(entries, LISTING_CHUNK)))
        if not chunk:
            return
        yield chunk


class RunExecutor:
    def __init__(
        self,
        tracker: ExecutorTrackerClient,
        loader: TableLoader,
        *,
        lease_seconds: int = 30,
    ) -> None:
        self._tracker = tracker
        self._loader = loader
        self._lease_seconds = lease_seconds

    async def execute(self, claim: tpb.ClaimRunResponse) -> None:
        run_id, epoch = claim.run.run_id, claim.lease_epoch
        with structlog.contextvars.bound_contextvars(run_id=run_id, ingestion_id=claim.run.ingestion_id):
            async with Lease(self._tracker, run_id, epoch, self._lease_seconds) as lease:
                started = time.monotonic()
                failpoints.hit("after_lease")
                try:
                    config = RunConfig.from_ingestion(ingestion_config(claim))
                    batch = batch_from_pb(claim.batch) if claim.HasField("batch") else await self._plan(claim, config)
                    planned = time.monotonic()
                    result = await self._load(claim, config, batch)
                    if lease.lost:
                        return
                    failpoints.soon("inside_finalize")
                    run = await self._tracker.finish_run(
                        run_id,
                        epoch,
                        snapshot_id=result.snapshot_id,
                        rows_written=result.rows_written,
                        failures=result.failures,
                        error="",
                        table_schema=result.table_schema,
                    )
                    _log.info(
                        "run finished",
                        status=run.status,
                        rows=run.rows_written,
                        file_count=run.files_processed,
                        plan_ms=round((planned - started) * 1000),
                        duration_ms=round((time.monotonic() - started) * 1000),
                    )
                except Aborted:
                    _log.warning("run taken over by another executor; stopping", lease_epoch=epoch)
                except Exception as error:
                    await self._fail(run_id, epoch, error)

    async def _plan(self, claim: tpb.ClaimRunResponse, config: RunConfig) -> Batch | None:
        run_id, epoch = claim.run.run_id, claim.lease_epoch
        entries = list_source(config.source_uri, config.pattern, config.s3_access())
        listed = await self._tracker.register_files(run_id, epoch, _chunks(entries))
        failpoints.hit("after_listing")
        plan = await self._tracker.plan_batch(
            run_id, epoch, max_files=config.max_files, max_bytes=config.max_bytes, max_retries=config.max_retries
        )
        failpoints.hit("after_plan")
        _log.info("planned", files_listed=listed, file_count=len(plan.batch.files) if plan.HasField("batch") else 0)
        return batch_from_pb(plan.batch) if plan.HasField("batch") else None

    async def _load(self, claim: tpb.ClaimRunResponse, config: RunConfig, batch: Batch | None) -> LoadResult:
        loader = self._loader
        if batch is None:
            # Nothing new: no Spark job. Re-create a dropped table from the remembered schema (DDL only).
            schema = await self._tracker.table_schema(config.ingestion_id)
            if schema and not await asyncio.to_thread(loader.table_exists, config.table):
                await asyncio.to_thread(loader.create_table, config.table, schema)
            return LoadResult()
        spec = BatchSpec(
            run_id=claim.run.run_id,
            batch_key=batch.batch_key,
            files_hash=batch.files_hash,
            files=batch.files,
            source_uri=config.source_uri,
            file_format=config.file_format,
            options=config.options,
            table=config.table,
        )
        with structlog.contextvars.bound_contextvars(batch_key=batch.batch_key, file_count=len(batch.files)):
            if config.source_uri.startswith("s3://"):
                await asyncio.to_thread(loader.configure_s3, config.source_uri, config.s3_access())
            return await asyncio.to_thread(loader.load, spec)

    async def _fail(self, run_id: str, epoch: int, error: Exception) -> None:
        message = short_error(error)
        _log.error("run failed", error=message, exc_info=error)
        with contextlib.suppress(Aborted):  # taken over meanwhile: the new holder finishes the run
            await self._tracker.finish_run(
                run_id, epoch, snapshot_id=None, rows_written=0, failures=(), error=message, table_schema=""
            )
