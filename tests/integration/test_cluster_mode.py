"""The executor as the driver of a Spark standalone cluster: runs execute on the cluster's executors.

The executor here is a process of its own (`python -m services.executor serve`, AUTOLOADER_SPARK_MASTER=spark://),
as a deployment runs it: a process holds one SparkContext, and this test process's belongs to local[*] stacks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import psutil
import pytest
import pytest_asyncio

from autoloader.executor.v1 import executor_pb2, executor_pb2_grpc
from autoloader.stack.spark_cluster import StandaloneCluster
from tests.conftest import create_database
from tests.support.executors import executor_address, start_executor, stop, wait_for_log
from tests.support.runs import create_ingestion, run_once, write_csv
from tests.support.stack import InProcessStack, start_stack

pytestmark = pytest.mark.integration

APP_NAME = "autoloader-executor"
# Set through AUTOLOADER_SPARK_CONF, so the master's view of the application shows that the setting arrived.
EXECUTOR_MEMORY_MIB = 768


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    with StandaloneCluster(tmp_path_factory.mktemp("spark-cluster"), cores=2, memory="2g") as running:
        assert len(cluster_processes(running)) == 2  # master and worker, found by the marker below
        yield running
    # Stopping reaches every JVM: master, worker and the executor JVMs the worker started.
    assert cluster_processes(running) == [], "the cluster left processes behind"


def cluster_processes(cluster: StandaloneCluster) -> list[psutil.Process]:
    """JVMs of this cluster, executors included: their classpath starts with the cluster's conf directory."""
    marker = str(cluster.directory / "conf")
    return [
        process
        for process in psutil.process_iter(["cmdline"])
        if any(marker in part for part in process.info["cmdline"] or [])
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster_stack(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessStack]:
    """Services and gateway with no run loop of their own, on a database of their own."""
    running = await start_stack(
        await create_database(postgres_url, "autoloader_cluster"), tmp_path_factory.mktemp("cluster-home")
    )
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="module")
def cluster_executor(
    cluster: StandaloneCluster, cluster_stack: InProcessStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An executor process driving the cluster; yields its gRPC address."""
    home = tmp_path_factory.mktemp("cluster-executor") / "home"
    process = start_executor(
        cluster_stack,
        home,
        str(home.parent / "warehouse"),
        {
            "AUTOLOADER_SPARK_MASTER": cluster.master_url,
            "AUTOLOADER_SPARK_CONF": f'{{"spark.executor.memory": "{EXECUTOR_MEMORY_MIB}m"}}',
        },
    )
    try:
        wait_for_log(home, "spark ready")
        yield executor_address(home)
    finally:
        stop([process])


async def sql(address: str, token: str, statement: str) -> list[list[str]]:
    """ExecuteSql on the given executor (what stack.sql does for the in-process one)."""
    async with grpc.aio.insecure_channel(address) as channel:
        response = await executor_pb2_grpc.ExecutorServiceStub(channel).ExecuteSql(
            executor_pb2.ExecuteSqlRequest(statement=statement),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=120,
        )
    return [list(row.values) for row in response.rows]


def our_application(cluster: StandaloneCluster) -> dict[str, Any]:
    applications = [a for a in cluster.running_applications() if a["name"] == APP_NAME]
    assert len(applications) == 1, cluster.state()
    return applications[0]


def executor_logs(cluster: StandaloneCluster, application_id: str) -> list[Path]:
    """The stderr of each executor the worker started for the application (work/<app>/<executor>/stderr)."""
    return sorted((cluster.work_dir / application_id).glob("*/stderr"))


def jars_on_executor_classpath(logs: list[Path]) -> set[str]:
    """Jars an executor fetched from the driver into its directory and added to its class loader."""
    pattern = re.compile(r"Executor: Adding file:\S*/([^/\s]+\.jar) to class loader")
    return {name for log in logs for name in pattern.findall(log.read_text(errors="replace"))}


def finished_tasks(logs: list[Path]) -> int:
    return sum(len(re.findall(r"Executor: Finished task", log.read_text(errors="replace"))) for log in logs)


async def test_runs_execute_on_the_cluster_executors_and_load_incrementally(
    cluster: StandaloneCluster, cluster_stack: InProcessStack, cluster_executor: str, tmp_path: Path
) -> None:
    token = cluster_stack.admin_token
    source = tmp_path / "events"
    for n in range(3):
        write_csv(source, f"part-{n}.csv", rows=10, start=n * 10)
    table = f"cluster.events_{uuid.uuid4().hex[:6]}"

    workers = cluster.state()["workers"]
    assert [(w["state"], w["cores"], w["memory"]) for w in workers] == [("ALIVE", 2, 2048)]
    # The driver is attached to the cluster, and the cluster granted it cores on the worker.
    assert await sql(cluster_executor, token, "SET spark.master") == [["spark.master", cluster.master_url]]
    application = our_application(cluster)
    assert application["cores"] > 0, application
    assert application["memoryperexecutor"] == EXECUTOR_MEMORY_MIB, application

    async with cluster_stack.http(token) as client:
        ingestion_id = await create_ingestion(client, source, table)
        first = await run_once(cluster_stack, client, ingestion_id)
        assert first["status"] == "SUCCESS", first
        assert (first["files_processed"], first["rows_written"]) == (3, 30)
        assert await sql(cluster_executor, token, f"SELECT count(*) FROM {table}") == [["30"]]

        # The tasks ran in the worker's executor JVMs (local[*] would leave no executor log there), and those
        # fetched the jars from the driver: Iceberg's writers ran there, the JDBC driver arrived too.
        logs = executor_logs(cluster, application["id"])
        assert logs, f"the worker started no executor for {application['id']}"
        tasks_after_first = finished_tasks(logs)
        assert tasks_after_first > 0
        assert len(cluster_processes(cluster)) == 3  # master, worker and our application's executor JVM
        loaded = jars_on_executor_classpath(logs)
        assert any(name.startswith("iceberg-spark-runtime-") for name in loaded), loaded
        assert any(name.startswith("postgresql-") for name in loaded), loaded

        # New files: the next run loads only them, again on the cluster.
        for n in (3, 4):
            write_csv(source, f"part-{n}.csv", rows=5, start=30 + (n - 3) * 5)
        second = await run_once(cluster_stack, client, ingestion_id)
        assert second["status"] == "SUCCESS", second
        assert (second["files_discovered"], second["files_processed"], second["rows_written"]) == (5, 2, 10)
        assert finished_tasks(executor_logs(cluster, application["id"])) > tasks_after_first

    assert await sql(cluster_executor, token, f"SELECT count(*), count(DISTINCT id) FROM {table}") == [["40", "40"]]
    assert our_application(cluster)["id"] == application["id"]  # the same long-lived session did both runs
