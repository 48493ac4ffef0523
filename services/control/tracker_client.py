"""The control service's view of the tracker: runs and processed files of one ingestion."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from autoloader.tracker.v1 import tracker_pb2 as tpb
from autoloader.tracker.v1 import tracker_pb2_grpc as tpb_grpc
from services.control.convert import ingestion_to_pb
from services.control.models import Ingestion
from services.shared import grpc_client
from services.shared.interceptors import as_service

SERVICE = "tracker"


def _frozen_config(ingestion: Ingestion) -> struct_pb2.Struct:
    """The configuration a run (or preview) works from, secrets included."""
    config = struct_pb2.Struct()
    config.update(
        json_format.MessageToDict(ingestion_to_pb(ingestion, reveal_secrets=True), preserving_proto_field_name=True)
    )
    return config


class TrackerClient:
    """Calls the tracker with the control service's own token: the tracker serves services, not users, so
    control checks the caller's rights on the ingestion first and then acts itself."""

    def __init__(self, channel: grpc.aio.Channel, token: str) -> None:
        self._stub = tpb_grpc.TrackerServiceStub(channel)
        self._token = token

    async def _call(self, rpc: Any, request: Any) -> Any:
        return await grpc_client.call(SERVICE, rpc, request, metadata=as_service(self._token))

    async def create_run(self, ingestion: Ingestion, trigger: str) -> tpb.Run:
        request = tpb.CreateRunRequest(
            ingestion_id=ingestion.ingestion_id, ingestion=_frozen_config(ingestion), trigger=trigger
        )
        response: tpb.CreateRunResponse = await self._call(self._stub.CreateRun, request)
        return response.run

    async def list_runs(self, ingestion_id: str, page_size: int, page_token: str) -> tpb.ListRunsResponse:
        request = tpb.ListRunsRequest(ingestion_id=ingestion_id, page_size=page_size, page_token=page_token)
        response: tpb.ListRunsResponse = await self._call(self._stub.ListRuns, request)
        return response

    async def list_files(self, request: tpb.ListFilesRequest) -> tpb.ListFilesResponse:
        response: tpb.ListFilesResponse = await self._call(self._stub.ListFiles, request)
        return response

    async def clear_files(self, request: tpb.ClearFilesRequest) -> tpb.ClearFilesResponse:
        response: tpb.ClearFilesResponse = await self._call(self._stub.ClearFiles, request)
        return response

    async def table_schema(self, ingestion_id: str) -> str:
        """The table schema (Spark JSON) recorded by the ingestion's last writing run; "" before that."""
        request = tpb.GetIngestionStateRequest(ingestion_id=ingestion_id)
        response: tpb.GetIngestionStateResponse = await self._call(self._stub.GetIngestionState, request)
        return response.table_schema

    async def get_run(self, run_id: str) -> tpb.Run:
        response: tpb.GetRunResponse = await self._call(self._stub.GetRun, tpb.GetRunRequest(run_id=run_id))
        return response.run

    async def cancel_run(self, run_id: str) -> tpb.Run:
        request = tpb.CancelRunRequest(run_id=run_id)
        response: tpb.CancelRunResponse = await self._call(self._stub.CancelRun, request)
        return response.run

    async def create_preview(
        self, ingestion: Ingestion, page_size: int, clear: tpb.ClearFilesRequest | None = None
    ) -> str:
        request = tpb.CreatePreviewRequest(
            ingestion_id=ingestion.ingestion_id, ingestion=_frozen_config(ingestion), page_size=page_size, clear=clear
        )
        response: tpb.CreatePreviewResponse = await self._call(self._stub.CreatePreview, request)
        return response.preview_id

    async def get_preview(self, preview_id: str) -> tpb.GetPreviewResponse:
        request = tpb.GetPreviewRequest(preview_id=preview_id)
        response: tpb.GetPreviewResponse = await self._call(self._stub.GetPreview, request)
        return response

    async def list_deliveries(self, ingestion_id: str, page_size: int, page_token: str) -> tpb.ListDeliveriesResponse:
        request = tpb.ListDeliveriesRequest(ingestion_id=ingestion_id, page_size=page_size, page_token=page_token)
        response: tpb.ListDeliveriesResponse = await self._call(self._stub.ListDeliveries, request)
        return response
