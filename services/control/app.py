"""Wires the control service together."""

from __future__ import annotations

import asyncpg
import grpc

from autoloader.control.v1 import control_pb2, control_pb2_grpc
from services.control.audit import AuditRecorder
from services.control.audit_repository import AuditRepository
from services.control.audit_service import AuditService
from services.control.repository import MIGRATIONS, SCHEMA, IngestionRepository, RequestLog
from services.control.schedule_repository import ScheduleRepository
from services.control.scheduler import Scheduler
from services.control.service import IngestionService, TokenService
from services.control.servicer import ControlServicer
from services.control.share_repository import ShareRepository
from services.control.tracker_client import TrackerClient
from services.shared.clock import Clock, SystemClock
from services.shared.config import ControlSettings
from services.shared.metrics import ServiceMetrics
from services.shared.periodic import Periodic
from services.shared.secret_box import SecretBox
from services.shared.service_runtime import AddServicers, RunningService, start_service
from services.shared.tls import open_channel
from services.shared.token_repository import TokenRepository

SERVICE_NAME = control_pb2.DESCRIPTOR.services_by_name["ControlService"].full_name


async def start(settings: ControlSettings, *, clock: Clock | None = None) -> RunningService:
    """Serve the control API; with a service token, also fire schedules (clock: a test's, else the system's)."""
    tracker_channel = open_channel(settings.tracker_address, settings)
    clock = clock or SystemClock()
    secret_box = SecretBox.from_settings(settings)
    schedulers: list[Scheduler] = []
    metrics = ServiceMetrics("control")
    ticks = metrics.counter("autoloader_schedule_ticks", "Schedule due times handled, by outcome", ["outcome"])

    def build(pool: asyncpg.Pool) -> AddServicers:
        tracker = TrackerClient(tracker_channel, settings.token.get_secret_value())
        schedules = ScheduleRepository(pool, secret_box)
        ingestions = IngestionService(
            IngestionRepository(pool, secret_box),
            tracker,
            schedules=schedules,
            clock=clock,
            outbound=settings.outbound_policy(),
            endpoints=settings.endpoint_policy(),
            local_sources=settings.local_source_policy(),
            shares=ShareRepository(pool),
            preview_timeout=settings.preview_timeout_seconds,
        )
        schedulers.append(
            Scheduler(
                schedules,
                tracker,
                clock,
                service_token=settings.token.get_secret_value(),
                on_tick=lambda tick: ticks.labels(outcome=tick.outcome).inc(),
            )
        )
        servicer = ControlServicer(
            ingestions, TokenService(TokenRepository(pool)), RequestLog(pool), AuditService(AuditRepository(pool))
        )

        def add(server: grpc.aio.Server) -> None:
            control_pb2_grpc.add_ControlServiceServicer_to_server(servicer, server)

        return add

    running = await start_service(
        name="control",
        settings=settings,
        schemas=[(SCHEMA, MIGRATIONS)],
        service_names=[SERVICE_NAME],
        build=build,
        metrics=metrics,
        observe=lambda pool: AuditRecorder(AuditRepository(pool)),
    )
    await IngestionRepository(running.pool, secret_box).rotate_secrets()
    for scheduler in schedulers:
        loop = Periodic("scheduler", scheduler.poll, settings.schedule_poll_seconds)
        loop.start()
        running.on_stop.append(loop.stop)
        running.background["scheduler"] = scheduler
    running.on_stop.append(tracker_channel.close)
    return running
