"""Wires the tracker service together."""

from __future__ import annotations

import asyncpg
import grpc

from autoloader.tracker.v1 import tracker_pb2, tracker_pb2_grpc
from services.shared.config import ServiceSettings
from services.shared.service_runtime import AddServicers, RunningService, start_service
from services.tracker.repository import MIGRATIONS, SCHEMA, RunRepository
from services.tracker.service import TrackerService
from services.tracker.servicer import TrackerServicer

SERVICE_NAME = tracker_pb2.DESCRIPTOR.services_by_name["TrackerService"].full_name


def _build(pool: asyncpg.Pool) -> AddServicers:
    servicer = TrackerServicer(TrackerService(RunRepository(pool)))

    def add(server: grpc.aio.Server) -> None:
        tracker_pb2_grpc.add_TrackerServiceServicer_to_server(servicer, server)

    return add


async def start(settings: ServiceSettings) -> RunningService:
    return await start_service(
        name="tracker", settings=settings, schemas=[(SCHEMA, MIGRATIONS)], service_names=[SERVICE_NAME], build=_build
    )
