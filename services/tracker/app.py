"""Wires the tracker service together."""

from __future__ import annotations

import asyncio

import asyncpg
import grpc

from autoloader.tracker.v1 import tracker_pb2, tracker_pb2_grpc
from services.shared.auth import Role
from services.shared.config import TrackerSettings
from services.shared.db import Listener
from services.shared.metrics import ServiceMetrics
from services.shared.periodic import Periodic
from services.shared.secret_box import SecretBox
from services.shared.service_runtime import AddServicers, RunningService, start_service
from services.tracker.delivery_repository import DeliveryRepository
from services.tracker.listing_cleanup import ListingCleanup
from services.tracker.metrics import TrackerMetrics, database_gauges
from services.tracker.preview_repository import PreviewRepository
from services.tracker.repository import MIGRATIONS, SCHEMA, RunRepository
from services.tracker.service import TrackerService
from services.tracker.servicer import TrackerServicer
from services.tracker.webhook_sender import WebhookSender
from services.tracker.work_signal import CHANNEL, WorkSignal

SERVICE_NAME = tracker_pb2.DESCRIPTOR.services_by_name["TrackerService"].full_name


async def start(settings: TrackerSettings) -> RunningService:
    """Serve the tracker API and send webhook deliveries in the background."""
    senders: list[WebhookSender] = []
    listings: list[ListingCleanup] = []
    listeners: list[Listener] = []
    metrics = ServiceMetrics("tracker")
    counters = TrackerMetrics(metrics)
    secret_box = SecretBox.from_settings(settings)

    def build(pool: asyncpg.Pool) -> AddServicers:
        deliveries = DeliveryRepository(pool, secret_box)
        listings.append(ListingCleanup(pool))
        work = WorkSignal(pool)
        # Runs and previews queued through the other tracker replicas wake this one's waiting executors too.
        listeners.append(Listener(settings.database_url.get_secret_value(), CHANNEL, work.wake, service="tracker"))
        tracker = TrackerService(
            RunRepository(pool, secret_box, listings[0]),
            PreviewRepository(pool, listings[0]),
            deliveries,
            counters,
            work,
        )
        servicer = TrackerServicer(tracker)
        senders.append(
            WebhookSender(
                deliveries,
                settings.outbound_policy(),
                backoff_base=settings.webhook_backoff_seconds,
                timeout=settings.webhook_timeout_seconds,
                counters=counters,
            )
        )
        metrics.add_database_gauges(asyncio.get_running_loop(), lambda: database_gauges(pool))

        def add(server: grpc.aio.Server) -> None:
            tracker_pb2_grpc.add_TrackerServiceServicer_to_server(servicer, server)

        return add

    running = await start_service(
        name="tracker",
        settings=settings,
        schemas=[(SCHEMA, MIGRATIONS)],
        service_names=[SERVICE_NAME],
        build=build,
        metrics=metrics,
        # Only the control service and executors call the tracker, with their service tokens.
        minimum_role=Role.ADMIN,
    )
    await listings[0].sweep()
    await RunRepository(running.pool, secret_box).rotate_secrets()
    await DeliveryRepository(running.pool, secret_box).rotate_secrets()
    listeners[0].start()
    running.on_stop.append(listeners[0].close)
    running.on_stop.append(listings[0].close)
    loop = Periodic("webhook-sender", senders[0].send_due, settings.webhook_poll_seconds)
    loop.start()
    running.on_stop.insert(0, loop.stop)
    running.background["webhooks"] = senders[0]
    return running
