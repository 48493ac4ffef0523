"""gRPC surface of the executor service."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from autoloader.executor.v1 import executor_pb2 as pb
from autoloader.executor.v1 import executor_pb2_grpc as pb_grpc
from services.executor.load import TableLoader, short_error
from services.shared.auth import Role
from services.shared.errors import FieldViolation, InvalidArgument
from services.shared.interceptors import principal
from services.shared.process_info import start_timestamp, version

DEFAULT_MAX_ROWS = 1000
MAX_ROWS_LIMIT = 100_000


class ExecutorServicer(pb_grpc.ExecutorServiceServicer):
    def __init__(self, spark_master: str, executor_id: str, loader: Callable[[], Awaitable[TableLoader]]) -> None:
        self._spark_master = spark_master
        self._executor_id = executor_id
        self._loader = loader

    async def GetExecutorInfo(self, request: pb.GetExecutorInfoRequest, context: Any) -> pb.GetExecutorInfoResponse:
        return pb.GetExecutorInfoResponse(
            executor_id=self._executor_id,
            version=version(),
            start_time=start_timestamp(),
            spark_master=self._spark_master,
        )

    async def ExecuteSql(self, request: pb.ExecuteSqlRequest, context: Any) -> pb.ExecuteSqlResponse:
        principal().require(Role.ADMIN, "running SQL")
        if not request.statement.strip():
            raise InvalidArgument.of([FieldViolation("statement", "is required")])
        max_rows = request.max_rows or DEFAULT_MAX_ROWS
        if not 0 < max_rows <= MAX_ROWS_LIMIT:
            raise InvalidArgument.of([FieldViolation("max_rows", f"must be between 1 and {MAX_ROWS_LIMIT}")])
        loader = await self._loader()
        try:
            columns, rows, truncated = await asyncio.to_thread(loader.run_sql, request.statement, max_rows)
        except Exception as error:  # Spark's analysis and parse errors are the user's to read
            raise InvalidArgument(f"statement: {short_error(error)}") from error
        return pb.ExecuteSqlResponse(
            columns=columns,
            rows=[
                pb.SqlRow(values=["" if v is None else str(v) for v in row], nulls=[v is None for v in row])
                for row in rows
            ],
            truncated=truncated,
        )
