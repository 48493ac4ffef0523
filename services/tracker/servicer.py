"""gRPC surface of the tracker service."""

from __future__ import annotations

from typing import Any

from autoloader.tracker.v1 import tracker_pb2 as pb
from autoloader.tracker.v1 import tracker_pb2_grpc as pb_grpc
from services.shared.process_info import start_timestamp, version


class TrackerServicer(pb_grpc.TrackerServiceServicer):
    async def GetTrackerInfo(self, request: pb.GetTrackerInfoRequest, context: Any) -> pb.GetTrackerInfoResponse:
        return pb.GetTrackerInfoResponse(version=version(), start_time=start_timestamp())
