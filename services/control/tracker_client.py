"""The control service's view of the tracker: runs and processed files of one ingestion."""

from __future__ import annotations

import grpc
from google.protobuf import json_format, struct_pb2

from autoloader.tracker.v1 import tracker_pb2 as tpb
from autoloader.tracker.v1 import tracker_pb2_grpc as tpb_grpc
from services.control.convert import ingestion_to_pb
from services.control.models import Ingestion
from services.shared.grpc_client import call

SERVICE = "tracker"


class TrackerClient:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = tpb_grpc.TrackerServiceStub(channel)

    async def create_run(self, ingestion: Ingestion, trigger: str) -> tpb.Run:
        config = struct_pb2.Struct()
        config.update(json_format.MessageToDict(ingestion_to_pb(ingestion), preserving_proto_field_name=True))
        request = tpb.CreateRunRequest(ingestion_id=ingestion.ingestion_id, ingestion=config, trigger=trigger)
        response: tpb.CreateRunResponse = await call(SERVICE, self._stub.CreateRun, request)
        return response.run

    async def list_runs(self, ingestion_id: str, page_size: int, page_token: str) -> tpb.ListRunsResponse:
        request = tpb.ListRunsRequest(ingestion_id=ingestion_id, page_size=page_size, page_token=page_token)
        response: tpb.ListRunsResponse = await call(SERVICE, self._stub.ListRuns, request)
        return response

    async def list_files(
        self, ingestion_id: str, status: str, page_size: int, page_token: str
    ) -> tpb.ListFilesResponse:
        request = tpb.ListFilesRequest(
            ingestion_id=ingestion_id, status=status, page_size=page_size, page_token=page_token
        )
        response: tpb.ListFilesResponse = await call(SERVICE, self._stub.ListFiles, request)
        return response

    async def clear_files(self, request: tpb.ClearFilesRequest) -> tpb.ClearFilesResponse:
        response: tpb.ClearFilesResponse = await call(SERVICE, self._stub.ClearFiles, request)
        return response

    async def table_schema(self, ingestion_id: str) -> str:
        """The table schema (Spark JSON) recorded by the ingestion's last writing run; "" before that."""
        request = tpb.GetIngestionStateRequest(ingestion_id=ingestion_id)
        response: tpb.GetIngestionStateResponse = await call(SERVICE, self._stub.GetIngestionState, request)
        return response.table_schema
