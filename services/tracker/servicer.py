"""gRPC surface of the tracker service: proto in, use case, proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from autoloader.tracker.v1 import tracker_pb2 as pb
from autoloader.tracker.v1 import tracker_pb2_grpc as pb_grpc
from services.shared.errors import InvalidArgument
from services.shared.interceptors import principal
from services.shared.process_info import start_timestamp, version
from services.shared.timestamps import from_timestamp
from services.tracker.convert import (
    batch_to_pb,
    delivery_to_pb,
    entry_from_pb,
    preview_result_to_pb,
    processed_file_to_pb,
    run_to_pb,
)
from services.tracker.listing_format import chunk_lines
from services.tracker.models import FileFailure, FileSelection
from services.tracker.service import TrackerService


def _time_or_none(request: Message, name: str) -> datetime | None:
    return from_timestamp(getattr(request, name)) if request.HasField(name) else None


def _selection(request: pb.ClearFilesRequest) -> FileSelection:
    return FileSelection(
        key_prefix=request.key_prefix,
        keys=tuple(request.keys),
        status=request.status,
        modified_after=_time_or_none(request, "modified_after_time"),
        modified_before=_time_or_none(request, "modified_before_time"),
    )


class TrackerServicer(pb_grpc.TrackerServiceServicer):
    def __init__(self, tracker: TrackerService) -> None:
        self._tracker = tracker

    async def GetRun(self, request: pb.GetRunRequest, context: Any) -> pb.GetRunResponse:
        return pb.GetRunResponse(run=run_to_pb(await self._tracker.get_run(principal(), request.run_id)))

    async def CreateRun(self, request: pb.CreateRunRequest, context: Any) -> pb.CreateRunResponse:
        ingestion = json_format.MessageToDict(request.ingestion)
        run = await self._tracker.create_run(principal(), request.ingestion_id, ingestion, request.trigger)
        return pb.CreateRunResponse(run=run_to_pb(run))

    async def ListRuns(self, request: pb.ListRunsRequest, context: Any) -> pb.ListRunsResponse:
        runs, token = await self._tracker.list_runs(
            principal(), request.ingestion_id, request.page_size, request.page_token
        )
        return pb.ListRunsResponse(runs=[run_to_pb(r) for r in runs], next_page_token=token)

    async def ListFiles(self, request: pb.ListFilesRequest, context: Any) -> pb.ListFilesResponse:
        selection = FileSelection(
            key_prefix=request.key_prefix,
            status=request.status,
            modified_after=_time_or_none(request, "modified_after_time"),
            modified_before=_time_or_none(request, "modified_before_time"),
            run_id=request.run_id,
        )
        files, token = await self._tracker.list_files(
            principal(), request.ingestion_id, selection, request.page_size, request.page_token
        )
        return pb.ListFilesResponse(processed_files=[processed_file_to_pb(f) for f in files], next_page_token=token)

    async def ClearFiles(self, request: pb.ClearFilesRequest, context: Any) -> pb.ClearFilesResponse:
        selection = _selection(request)
        cleared = await self._tracker.clear_files(principal(), request.ingestion_id, selection, dry_run=request.dry_run)
        return pb.ClearFilesResponse(files_cleared=cleared.files, bytes_cleared=cleared.bytes)

    async def ClaimRun(self, request: pb.ClaimRunRequest, context: Any) -> pb.ClaimRunResponse:
        claim = await self._tracker.claim_run(principal(), request.executor_id, request.lease_seconds)
        if claim is None:
            return pb.ClaimRunResponse(claimed=False)
        response = pb.ClaimRunResponse(claimed=True, run=run_to_pb(claim.run), lease_epoch=claim.lease_epoch)
        response.ingestion.update(claim.ingestion)
        if claim.batch is not None:
            response.batch.CopyFrom(batch_to_pb(claim.batch))
        if claim.listing_start_after is not None:
            response.incremental_listing.start_after = claim.listing_start_after
        return response

    async def WaitForWork(self, request: pb.WaitForWorkRequest, context: Any) -> pb.WaitForWorkResponse:
        queued = await self._tracker.wait_for_work(principal(), request.executor_id, request.timeout_millis)
        return pb.WaitForWorkResponse(work_queued=queued)

    async def RenewLease(self, request: pb.RenewLeaseRequest, context: Any) -> pb.RenewLeaseResponse:
        cancel = await self._tracker.renew_lease(
            principal(), request.run_id, request.lease_epoch, request.lease_seconds
        )
        return pb.RenewLeaseResponse(cancel_requested=cancel)

    async def RegisterFiles(
        self, requests: AsyncIterator[pb.RegisterFilesRequest], context: Any
    ) -> pb.RegisterFilesResponse:
        first = await anext(requests, None)
        if first is None:
            return pb.RegisterFilesResponse(files_registered=0)

        async def packed_chunks() -> AsyncIterator[bytes]:
            chunk: pb.RegisterFilesRequest | None = first
            while chunk is not None:
                if (chunk.run_id, chunk.lease_epoch) != (first.run_id, first.lease_epoch):
                    raise InvalidArgument("run_id, lease_epoch: every message of a stream must name the same run")
                yield chunk_lines(chunk.packed_files, (entry_from_pb(f) for f in chunk.files))
                chunk = await anext(requests, None)

        registered = await self._tracker.register_files(principal(), first.run_id, first.lease_epoch, packed_chunks())
        return pb.RegisterFilesResponse(files_registered=registered)

    async def PlanBatch(self, request: pb.PlanBatchRequest, context: Any) -> pb.PlanBatchResponse:
        batch, discovered, skipped = await self._tracker.plan_batch(
            principal(),
            request.run_id,
            request.lease_epoch,
            request.max_files,
            request.max_bytes,
            request.max_retries,
        )
        response = pb.PlanBatchResponse(files_discovered=discovered, files_skipped=skipped)
        if batch is not None:
            response.batch.CopyFrom(batch_to_pb(batch))
        return response

    async def FinishRun(self, request: pb.FinishRunRequest, context: Any) -> pb.FinishRunResponse:
        run = await self._tracker.finish_run(
            principal(),
            request.run_id,
            request.lease_epoch,
            snapshot_id=request.snapshot_id if request.HasField("snapshot_id") else None,
            rows_written=request.rows_written,
            failures=[FileFailure(f.key, f.etag, f.error) for f in request.failures],
            error=request.error,
            table_schema=request.table_schema,
            refused=request.refused,
            cancelled=request.cancelled,
            commit_time=_time_or_none(request, "commit_time"),
        )
        return pb.FinishRunResponse(run=run_to_pb(run))

    async def CancelRun(self, request: pb.CancelRunRequest, context: Any) -> pb.CancelRunResponse:
        return pb.CancelRunResponse(run=run_to_pb(await self._tracker.cancel_run(principal(), request.run_id)))

    async def ListDeliveries(self, request: pb.ListDeliveriesRequest, context: Any) -> pb.ListDeliveriesResponse:
        page, token = await self._tracker.list_deliveries(
            principal(), request.ingestion_id, request.page_size, request.page_token
        )
        return pb.ListDeliveriesResponse(deliveries=[delivery_to_pb(d) for d in page], next_page_token=token)

    async def CreatePreview(self, request: pb.CreatePreviewRequest, context: Any) -> pb.CreatePreviewResponse:
        config = json_format.MessageToDict(request.ingestion)
        clear = _selection(request.clear) if request.HasField("clear") else None
        preview_id = await self._tracker.create_preview(
            principal(), request.ingestion_id, config, request.page_size, clear
        )
        return pb.CreatePreviewResponse(preview_id=preview_id)

    async def GetPreview(self, request: pb.GetPreviewRequest, context: Any) -> pb.GetPreviewResponse:
        preview = await self._tracker.get_preview(principal(), request.preview_id)
        response = pb.GetPreviewResponse(status=preview.status, error=preview.error)
        if preview.result is not None:
            response.result.CopyFrom(preview_result_to_pb(preview.result))
        return response

    async def ClaimPreview(self, request: pb.ClaimPreviewRequest, context: Any) -> pb.ClaimPreviewResponse:
        claimed = await self._tracker.claim_preview(principal(), request.executor_id)
        if claimed is None:
            return pb.ClaimPreviewResponse(claimed=False)
        response = pb.ClaimPreviewResponse(claimed=True, preview_id=claimed[0])
        response.ingestion.update(claimed[1])
        return response

    async def CompletePreview(
        self, requests: AsyncIterator[pb.CompletePreviewRequest], context: Any
    ) -> pb.CompletePreviewResponse:
        preview_id, table_exists, error = "", False, ""
        async for chunk in requests:
            if not preview_id:
                preview_id, table_exists = chunk.preview_id, chunk.table_exists
            error = error or chunk.error
            if chunk.files or chunk.packed_files:
                entries = [entry_from_pb(f) for f in chunk.files]
                await self._tracker.add_preview_listing(principal(), preview_id, entries, chunk.packed_files)
        if preview_id:
            await self._tracker.complete_preview(principal(), preview_id, table_exists=table_exists, error=error)
        return pb.CompletePreviewResponse()

    async def GetIngestionState(
        self, request: pb.GetIngestionStateRequest, context: Any
    ) -> pb.GetIngestionStateResponse:
        schema = await self._tracker.table_schema(principal(), request.ingestion_id)
        return pb.GetIngestionStateResponse(table_schema=schema)

    async def GetTrackerInfo(self, request: pb.GetTrackerInfoRequest, context: Any) -> pb.GetTrackerInfoResponse:
        return pb.GetTrackerInfoResponse(version=version(), start_time=start_timestamp())
