"""The executor's calls to the tracker, authenticated with the executor's own service token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
from google.protobuf import json_format

from autoloader.tracker.v1 import tracker_pb2 as tpb
from autoloader.tracker.v1 import tracker_pb2_grpc as tpb_grpc
from services.shared.grpc_client import translated
from services.tracker.convert import entry_from_pb
from services.tracker.listing_format import pack
from services.tracker.models import Batch, FileEntry

SERVICE = "tracker"
WAIT_DEADLINE_SLACK_SECONDS = 5.0


def batch_from_pb(message: tpb.Batch) -> Batch:
    return Batch(
        batch_seq=message.batch_seq,
        batch_key=message.batch_key,
        files=[entry_from_pb(f) for f in message.files],
        files_hash=message.files_hash,
    )


class ExecutorTrackerClient:
    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._stub = tpb_grpc.TrackerServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def claim_run(self, executor_id: str, lease_seconds: int) -> tpb.ClaimRunResponse | None:
        async with translated(SERVICE):
            response: tpb.ClaimRunResponse = await self._stub.ClaimRun(
                tpb.ClaimRunRequest(executor_id=executor_id, lease_seconds=lease_seconds), metadata=self._metadata
            )
        return response if response.claimed else None

    async def wait_for_work(self, executor_id: str, timeout_seconds: float) -> bool:
        """Wait until a run or preview may be waiting (True), at most timeout_seconds (False); claims nothing."""
        async with translated(SERVICE):
            response: tpb.WaitForWorkResponse = await self._stub.WaitForWork(
                tpb.WaitForWorkRequest(executor_id=executor_id, timeout_millis=round(timeout_seconds * 1000)),
                metadata=self._metadata,
                timeout=timeout_seconds + WAIT_DEADLINE_SLACK_SECONDS,
            )
        return response.work_queued

    async def renew_lease(self, run_id: str, lease_epoch: int, lease_seconds: int) -> bool:
        """Extend the lease; True when someone asked to cancel the run."""
        async with translated(SERVICE):
            response: tpb.RenewLeaseResponse = await self._stub.RenewLease(
                tpb.RenewLeaseRequest(run_id=run_id, lease_epoch=lease_epoch, lease_seconds=lease_seconds),
                metadata=self._metadata,
            )
        return response.cancel_requested

    async def register_files(self, run_id: str, lease_epoch: int, chunks: AsyncIterator[list[FileEntry]]) -> int:
        async def requests() -> AsyncIterator[tpb.RegisterFilesRequest]:
            async for chunk in chunks:
                yield tpb.RegisterFilesRequest(run_id=run_id, lease_epoch=lease_epoch, packed_files=pack(chunk))

        async with translated(SERVICE):
            response: tpb.RegisterFilesResponse = await self._stub.RegisterFiles(requests(), metadata=self._metadata)
        return response.files_registered

    async def plan_batch(
        self, run_id: str, lease_epoch: int, *, max_files: int, max_bytes: int, max_retries: int
    ) -> tpb.PlanBatchResponse:
        async with translated(SERVICE):
            response: tpb.PlanBatchResponse = await self._stub.PlanBatch(
                tpb.PlanBatchRequest(
                    run_id=run_id,
                    lease_epoch=lease_epoch,
                    max_files=max_files,
                    max_bytes=max_bytes,
                    max_retries=max_retries,
                ),
                metadata=self._metadata,
            )
        return response

    async def finish_run(
        self,
        run_id: str,
        lease_epoch: int,
        *,
        snapshot_id: int | None,
        rows_written: int,
        failures: Iterable[tuple[FileEntry, str]],
        error: str,
        table_schema: str,
        refused: bool = False,
        cancelled: bool = False,
        commit_millis: int = 0,
    ) -> tpb.Run:
        request = tpb.FinishRunRequest(
            run_id=run_id,
            lease_epoch=lease_epoch,
            snapshot_id=snapshot_id,
            rows_written=rows_written,
            failures=[tpb.FileOutcome(key=f.key, etag=f.etag, error=message) for f, message in failures],
            error=error,
            table_schema=table_schema,
            refused=refused,
            cancelled=cancelled,
        )
        if commit_millis:
            request.commit_time.FromMilliseconds(commit_millis)
        async with translated(SERVICE):
            response: tpb.FinishRunResponse = await self._stub.FinishRun(request, metadata=self._metadata)
        return response.run

    async def claim_preview(self, executor_id: str) -> tpb.ClaimPreviewResponse | None:
        async with translated(SERVICE):
            response: tpb.ClaimPreviewResponse = await self._stub.ClaimPreview(
                tpb.ClaimPreviewRequest(executor_id=executor_id), metadata=self._metadata
            )
        return response if response.claimed else None

    async def complete_preview(
        self, preview_id: str, chunks: AsyncIterator[list[FileEntry]], *, table_exists: bool, error: Callable[[], str]
    ) -> None:
        """Stream the listing; error() is read once the listing ended (a failed listing ends the preview
        FAILED with it)."""

        async def requests() -> AsyncIterator[tpb.CompletePreviewRequest]:
            yield tpb.CompletePreviewRequest(preview_id=preview_id, table_exists=table_exists)
            async for chunk in chunks:
                yield tpb.CompletePreviewRequest(preview_id=preview_id, packed_files=pack(chunk))
            if message := error():
                yield tpb.CompletePreviewRequest(preview_id=preview_id, error=message)

        async with translated(SERVICE):
            await self._stub.CompletePreview(requests(), metadata=self._metadata)

    async def table_schema(self, ingestion_id: str) -> str:
        async with translated(SERVICE):
            response: tpb.GetIngestionStateResponse = await self._stub.GetIngestionState(
                tpb.GetIngestionStateRequest(ingestion_id=ingestion_id), metadata=self._metadata
            )
        return response.table_schema


def ingestion_config(claim: tpb.ClaimRunResponse) -> dict[str, Any]:
    config: dict[str, Any] = json_format.MessageToDict(claim.ingestion)
    return config
