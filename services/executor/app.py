"""Wires the executor service together: RPCs plus the pull loop that executes runs."""

from __future__ import annotations

from urllib.parse import urlsplit

import asyncpg
import grpc

from autoloader.executor.v1 import executor_pb2, executor_pb2_grpc
from services.executor import credentials
from services.executor.discover import SourceLimits
from services.executor.jars import ensure_jars
from services.executor.load import TableLoader
from services.executor.servicer import ExecutorServicer
from services.executor.spark_session import build_spark_session, s3a_options
from services.executor.tracker_client import ExecutorTrackerClient
from services.executor.worker import Worker
from services.shared.auth import Role
from services.shared.config import ExecutorSettings
from services.shared.metrics import ServiceMetrics
from services.shared.service_runtime import AddServicers, RunningService, start_service
from services.shared.tls import open_channel

SERVICE_NAME = executor_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name


def warehouse_s3_options(settings: ExecutorSettings) -> dict[str, str]:
    """s3a settings scoped to the warehouse's bucket, so sources on other stores keep their own."""
    location = settings.warehouse_location()
    if not location.startswith("s3a://"):
        return {}
    bucket = urlsplit(location).netloc
    access_key, secret_key = credentials.resolve(settings.warehouse_credentials_ref)
    options = s3a_options(settings.warehouse_endpoint_url, settings.warehouse_region, access_key, secret_key)
    return {
        key.replace("spark.hadoop.fs.s3a.", f"spark.hadoop.fs.s3a.bucket.{bucket}.", 1): value
        for key, value in options.items()
    }


def session_conf(settings: ExecutorSettings) -> dict[str, str]:
    """The Spark settings the executor adds to build_spark_session's own; AUTOLOADER_SPARK_CONF comes last,
    so a deployment can override anything (e.g. spark.driver.host for executors on other machines)."""
    return {
        # Unqualified names (db.table) resolve in the Iceberg catalog, in `autoloader sql` too.
        "spark.sql.defaultCatalog": settings.catalog,
        **warehouse_s3_options(settings),
        **settings.spark_conf,
    }


def spark_starter(settings: ExecutorSettings) -> TableLoader:
    """Start the executor's SparkSession (blocking, seconds) and wrap it for loading."""
    settings.home.mkdir(parents=True, exist_ok=True)
    spark = build_spark_session(
        master=settings.spark_master,
        database_url=settings.database_url.get_secret_value(),
        warehouse=settings.warehouse_location(),
        catalog=settings.catalog,
        jars=ensure_jars(settings.jar_directory()),
        app_name="autoloader-executor",
        extra_conf=session_conf(settings),
        rest_catalog_uri=settings.rest_catalog_uri,
        rest_catalog_token=settings.rest_catalog_token.get_secret_value() if settings.rest_catalog_token else None,
    )
    # A session of its own: the loader sets spark.wap.id per batch, which must not leak into other SQL.
    return TableLoader(spark.newSession(), settings.catalog)


async def start(settings: ExecutorSettings) -> RunningService:
    tracker_channel = open_channel(settings.tracker_address, settings)
    tracker = ExecutorTrackerClient(tracker_channel, settings.token.get_secret_value())
    metrics = ServiceMetrics("executor")
    worker = Worker(
        tracker,
        lambda: spark_starter(settings),
        lease_seconds=settings.lease_seconds,
        poll_seconds=settings.poll_seconds,
        metrics=metrics,
        limits=SourceLimits(settings.endpoint_policy(), settings.local_source_policy()),
    )

    def build(pool: asyncpg.Pool) -> AddServicers:
        def add(server: grpc.aio.Server) -> None:
            servicer = ExecutorServicer(settings.spark_master, worker.executor_id, worker.loader)
            executor_pb2_grpc.add_ExecutorServiceServicer_to_server(servicer, server)

        return add

    running = await start_service(
        name="executor",
        settings=settings,
        schemas=[],
        service_names=[SERVICE_NAME],
        build=build,
        metrics=metrics,
        minimum_role=Role.ADMIN,  # the executor's RPCs are for the other services
    )

    async def stop_worker() -> None:
        await worker.stop(settings.shutdown_grace_seconds)
        await tracker_channel.close()

    running.on_stop.append(stop_worker)
    running.background["worker"] = worker  # benchmarks reach its SparkSession through it
    if settings.worker_enabled:
        worker.start()
    return running
