"""gRPC surface of the control service: proto in, use case, proto out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from google.protobuf.message import Message

from autoloader.control.v1 import control_pb2 as pb
from autoloader.control.v1 import control_pb2_grpc as pb_grpc
from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.control.audit_service import AuditService
from services.control.convert import (
    audit_event_to_pb,
    columns_to_pb,
    ingestion_from_pb,
    ingestion_to_pb,
    role_from_pb,
    role_to_pb,
    share_to_pb,
    tick_to_pb,
    token_to_pb,
)
from services.control.preview_warnings import preview_warnings
from services.control.repository import RequestLog
from services.control.schema_ddl import to_ddl
from services.control.service import IngestionService, TokenService
from services.shared.errors import FieldViolation, InvalidArgument
from services.shared.interceptors import principal

Response = TypeVar("Response", bound=Message)


class ControlServicer(pb_grpc.ControlServiceServicer):
    def __init__(
        self, ingestions: IngestionService, tokens: TokenService, request_log: RequestLog, audit: AuditService
    ) -> None:
        self._ingestions = ingestions
        self._tokens = tokens
        self._request_log = request_log
        self._audit = audit

    async def _once(
        self, method: str, request_id: str, response_type: type[Response], call: Callable[[], Awaitable[Response]]
    ) -> Response:
        """Run a mutating call once per (caller, request_id); a retry gets the stored first response."""
        if not request_id:
            return await call()
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in request_id):
            # PostgreSQL cannot store NUL, and no client-made id holds control characters.
            raise InvalidArgument.of([FieldViolation("request_id", "must not contain control characters")])
        caller = principal().name
        stored = await self._request_log.reserve(caller, request_id, method)
        if stored is not None:
            return response_type.FromString(stored)
        try:
            response = await call()
        except BaseException:
            await self._request_log.release(caller, request_id)
            raise
        await self._request_log.complete(caller, request_id, response.SerializeToString())
        return response

    async def CreateIngestion(self, request: pb.CreateIngestionRequest, context: Any) -> pb.CreateIngestionResponse:
        async def create() -> pb.CreateIngestionResponse:
            created = await self._ingestions.create(principal(), ingestion_from_pb(request.ingestion))
            return pb.CreateIngestionResponse(ingestion=ingestion_to_pb(created))

        return await self._once("CreateIngestion", request.request_id, pb.CreateIngestionResponse, create)

    async def ListIngestions(self, request: pb.ListIngestionsRequest, context: Any) -> pb.ListIngestionsResponse:
        page, next_token = await self._ingestions.list_page(principal(), request.page_size, request.page_token)
        return pb.ListIngestionsResponse(ingestions=[ingestion_to_pb(i) for i in page], next_page_token=next_token)

    async def GetIngestion(self, request: pb.GetIngestionRequest, context: Any) -> pb.GetIngestionResponse:
        ingestion = await self._ingestions.get(principal(), request.ingestion_id)
        return pb.GetIngestionResponse(ingestion=ingestion_to_pb(ingestion))

    async def UpdateIngestion(self, request: pb.UpdateIngestionRequest, context: Any) -> pb.UpdateIngestionResponse:
        async def update() -> pb.UpdateIngestionResponse:
            updated = await self._ingestions.update(
                principal(),
                request.ingestion_id,
                ingestion_from_pb(request.ingestion),
                list(request.update_mask.paths),
            )
            return pb.UpdateIngestionResponse(ingestion=ingestion_to_pb(updated))

        return await self._once("UpdateIngestion", request.request_id, pb.UpdateIngestionResponse, update)

    async def DeleteIngestion(self, request: pb.DeleteIngestionRequest, context: Any) -> pb.DeleteIngestionResponse:
        async def delete() -> pb.DeleteIngestionResponse:
            await self._ingestions.delete(principal(), request.ingestion_id)
            return pb.DeleteIngestionResponse(
                message=f"Deleted ingestion {request.ingestion_id}; its destination table was not touched",
                ingestion_id=request.ingestion_id,
            )

        return await self._once("DeleteIngestion", request.request_id, pb.DeleteIngestionResponse, delete)

    async def RunIngestion(self, request: pb.RunIngestionRequest, context: Any) -> pb.RunIngestionResponse:
        async def run() -> pb.RunIngestionResponse:
            return pb.RunIngestionResponse(run=await self._ingestions.run(principal(), request.ingestion_id))

        return await self._once("RunIngestion", request.request_id, pb.RunIngestionResponse, run)

    async def ListIngestionRuns(
        self, request: pb.ListIngestionRunsRequest, context: Any
    ) -> pb.ListIngestionRunsResponse:
        page = await self._ingestions.list_runs(
            principal(), request.ingestion_id, request.page_size, request.page_token
        )
        return pb.ListIngestionRunsResponse(runs=page.runs, next_page_token=page.next_page_token)

    async def ListProcessedFiles(
        self, request: pb.ListProcessedFilesRequest, context: Any
    ) -> pb.ListProcessedFilesResponse:
        query = tpb.ListFilesRequest()
        query.ParseFromString(request.SerializeToString())  # the same fields, numbered alike
        page = await self._ingestions.list_files(principal(), query)
        return pb.ListProcessedFilesResponse(processed_files=page.processed_files, next_page_token=page.next_page_token)

    async def GetIngestionSchema(
        self, request: pb.GetIngestionSchemaRequest, context: Any
    ) -> pb.GetIngestionSchemaResponse:
        origin, columns = await self._ingestions.schema(principal(), request.ingestion_id)
        return pb.GetIngestionSchemaResponse(origin=origin, columns=columns_to_pb(columns), ddl=to_ddl(columns))

    async def ClearProcessedFiles(
        self, request: pb.ClearProcessedFilesRequest, context: Any
    ) -> pb.ClearProcessedFilesResponse:
        selection = tpb.ClearFilesRequest()
        selection.ParseFromString(request.SerializeToString())  # the same fields, numbered alike
        cleared, reprocess = await self._ingestions.clear_files(principal(), selection)
        if request.dry_run and reprocess is not None:
            message = (
                f"Would clear {cleared.files_cleared} processed file records; {reprocess.files_to_reprocess} of"
                f" their files ({reprocess.bytes_to_reprocess} bytes) are still in the source and would be loaded"
                f" again. Nothing was cleared"
            )
        elif request.dry_run:
            message = (
                f"Would clear {cleared.files_cleared} processed file records; the next run would load"
                f" {cleared.bytes_cleared} bytes again if the files are still in the source. Nothing was cleared"
            )
        else:
            message = f"Cleared {cleared.files_cleared} processed file records"
        response = pb.ClearProcessedFilesResponse(
            message=message, files_cleared=cleared.files_cleared, ingestion_id=request.ingestion_id
        )
        if request != pb.ClearProcessedFilesRequest(ingestion_id=request.ingestion_id):  # a selection or dry run
            response.bytes_cleared = cleared.bytes_cleared
            response.dry_run = request.dry_run
        if reprocess is not None:
            response.files_to_reprocess = reprocess.files_to_reprocess
            response.bytes_to_reprocess = reprocess.bytes_to_reprocess
        return response

    async def PreviewIngestion(self, request: pb.PreviewIngestionRequest, context: Any) -> pb.PreviewIngestionResponse:
        ingestion, result = await self._ingestions.preview(principal(), request.ingestion_id, request.page_size)
        return pb.PreviewIngestionResponse(
            ingestion_id=ingestion.ingestion_id,
            files_to_process=result.files_to_process,
            bytes_to_process=result.bytes_to_process,
            files=result.files,
            files_pending=result.files_pending,
            bytes_pending=result.bytes_pending,
            files_discovered=result.files_discovered,
            files_skipped=result.files_skipped,
            table_exists=result.table_exists,
            warnings=preview_warnings(ingestion, result),
            active_run_id=result.active_run_id,
        )

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: Any
    ) -> pb.ListWebhookDeliveriesResponse:
        page = await self._ingestions.list_deliveries(
            principal(), request.ingestion_id, request.page_size, request.page_token
        )
        return pb.ListWebhookDeliveriesResponse(deliveries=page.deliveries, next_page_token=page.next_page_token)

    async def CancelRun(self, request: pb.CancelRunRequest, context: Any) -> pb.CancelRunResponse:
        async def cancel() -> pb.CancelRunResponse:
            return pb.CancelRunResponse(run=await self._ingestions.cancel_run(principal(), request.run_id))

        return await self._once("CancelRun", request.request_id, pb.CancelRunResponse, cancel)

    async def GetRun(self, request: pb.GetRunRequest, context: Any) -> pb.GetRunResponse:
        return pb.GetRunResponse(run=await self._ingestions.get_run(principal(), request.run_id))

    async def ShareIngestion(self, request: pb.ShareIngestionRequest, context: Any) -> pb.ShareIngestionResponse:
        async def share() -> pb.ShareIngestionResponse:
            shared = await self._ingestions.share(
                principal(), request.ingestion_id, request.principal, role_from_pb(request.role)
            )
            return pb.ShareIngestionResponse(share=share_to_pb(shared))

        return await self._once("ShareIngestion", request.request_id, pb.ShareIngestionResponse, share)

    async def ListIngestionShares(
        self, request: pb.ListIngestionSharesRequest, context: Any
    ) -> pb.ListIngestionSharesResponse:
        shares = await self._ingestions.list_shares(principal(), request.ingestion_id)
        return pb.ListIngestionSharesResponse(shares=[share_to_pb(s) for s in shares])

    async def UnshareIngestion(self, request: pb.UnshareIngestionRequest, context: Any) -> pb.UnshareIngestionResponse:
        async def unshare() -> pb.UnshareIngestionResponse:
            removed = await self._ingestions.unshare(principal(), request.ingestion_id, request.principal)
            what = "is no longer shared with" if removed else "was not shared with"
            message = f"ingestion '{request.ingestion_id}' {what} '{request.principal}'"
            return pb.UnshareIngestionResponse(message=message)

        return await self._once("UnshareIngestion", request.request_id, pb.UnshareIngestionResponse, unshare)

    async def ListAuditEvents(self, request: pb.ListAuditEventsRequest, context: Any) -> pb.ListAuditEventsResponse:
        page, next_token = await self._audit.list_page(
            principal(),
            request.page_size,
            request.page_token,
            principal=request.principal,
            ingestion_id=request.ingestion_id,
        )
        return pb.ListAuditEventsResponse(events=[audit_event_to_pb(e) for e in page], next_page_token=next_token)

    async def ListScheduleTicks(
        self, request: pb.ListScheduleTicksRequest, context: Any
    ) -> pb.ListScheduleTicksResponse:
        ticks, next_token = await self._ingestions.list_ticks(
            principal(), request.ingestion_id, request.page_size, request.page_token
        )
        return pb.ListScheduleTicksResponse(ticks=[tick_to_pb(t) for t in ticks], next_page_token=next_token)

    async def GetCaller(self, request: pb.GetCallerRequest, context: Any) -> pb.GetCallerResponse:
        caller = principal()
        return pb.GetCallerResponse(name=caller.name, role=role_to_pb(caller.role), token_id=caller.token_id)

    async def CreateToken(self, request: pb.CreateTokenRequest, context: Any) -> pb.CreateTokenResponse:
        record, secret = await self._tokens.create(principal(), request.name, role_from_pb(request.role))
        return pb.CreateTokenResponse(token=token_to_pb(record), secret=secret)

    async def ListTokens(self, request: pb.ListTokensRequest, context: Any) -> pb.ListTokensResponse:
        records = await self._tokens.list(principal(), request.show_revoked)
        return pb.ListTokensResponse(tokens=[token_to_pb(r) for r in records])

    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Any) -> pb.RevokeTokenResponse:
        record = await self._tokens.revoke(principal(), request.token_id)
        return pb.RevokeTokenResponse(token=token_to_pb(record))
