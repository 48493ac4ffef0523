"""Wires the executor service together."""

from __future__ import annotations

import asyncpg
import grpc

from autoloader.executor.v1 import executor_pb2, executor_pb2_grpc
from services.executor.servicer import ExecutorServicer
from services.shared.config import ExecutorSettings
from services.shared.service_runtime import AddServicers, RunningService, start_service

SERVICE_NAME = executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name


async def start(settings: ExecutorSettings) -> RunningService:
    def build(pool: asyncpg.Pool) -> AddServicers:
        def add(server: grpc.aio.Server) -> None:
            servicer = ExecutorServicer(settings.spark_master)
            executor_pb2_grpc.add_ExecutorServiceServicer_to_server(servicer, server)

        return add

    return await start_service(
        name="executor", settings=settings, schemas=[], service_names=[SERVICE_NAME], build=build
    )
