"""Wires the control service together."""

from __future__ import annotations

import asyncpg
import grpc

from autoloader.control.v1 import control_pb2, control_pb2_grpc
from services.control.repository import MIGRATIONS, SCHEMA, IngestionRepository, RequestLog
from services.control.service import IngestionService, TokenService
from services.control.servicer import ControlServicer
from services.control.tracker_client import TrackerClient
from services.shared.config import ControlSettings
from services.shared.service_runtime import AddServicers, RunningService, start_service
from services.shared.token_repository import TokenRepository

SERVICE_NAME = control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name


async def start(settings: ControlSettings) -> RunningService:
    tracker_channel = grpc.aio.insecure_channel(settings.tracker_address)

    def build(pool: asyncpg.Pool) -> AddServicers:
        ingestions = IngestionService(IngestionRepository(pool), TrackerClient(tracker_channel))
        servicer = ControlServicer(ingestions, TokenService(TokenRepository(pool)), RequestLog(pool))

        def add(server: grpc.aio.Server) -> None:
            control_pb2_grpc.add_ControlServiceServicer_to_server(servicer, server)

        return add

    running = await start_service(
        name="control",
        settings=settings,
        schemas=[(SCHEMA, MIGRATIONS)],
        service_names=[SERVICE_NAME],
        build=build,
    )
    running.on_stop.append(tracker_channel.close)
    return running
