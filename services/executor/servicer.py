"""gRPC surface of the executor service."""

from __future__ import annotations

from typing import Any

from autoloader.executor.v1 import executor_pb2 as pb
from autoloader.executor.v1 import executor_pb2_grpc as pb_grpc
from services.shared.process_info import PROCESS_ID, start_timestamp, version


class ExecutorServicer(pb_grpc.ExecutorServiceServicer):
    def __init__(self, spark_master: str) -> None:
        self._spark_master = spark_master

    async def GetExecutorInfo(self, request: pb.GetExecutorInfoRequest, context: Any) -> pb.GetExecutorInfoResponse:
        return pb.GetExecutorInfoResponse(
            executor_id=f"executor-{PROCESS_ID}",
            version=version(),
            start_time=start_timestamp(),
            spark_master=self._spark_master,
        )
