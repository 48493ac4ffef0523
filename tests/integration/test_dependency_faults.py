"""Dependencies failing mid-run: PostgreSQL restarted, the S3 API server down, the Spark JVM killed.

Each run ends failed or resumed cleanly; nothing is lost or duplicated; the next run picks up correctly.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psutil
import pytest
import pytest_asyncio

from autoloader.stack.postgres import EmbeddedPostgres
from bench.crash_matrix import Standby, write_source
from tests.support.executors import freezing_executor, wait_until_stopped
from tests.support.runs import create_ingestion, run_once, write_csv
from tests.support.s3 import S3Server, running_s3_server
from tests.support.stack import InProcessStack, start_stack

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def own_database(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, str, InProcessStack]]:
    """A stack on a PostgreSQL of its own, so restarting it disturbs no other test."""
    postgres = EmbeddedPostgres(tmp_path / "pg")
    url = postgres.start()
    stack = await start_stack(url, tmp_path / "home")
    try:
        yield postgres, url, stack
    finally:
        await stack.stop()
        postgres.stop()


async def test_postgres_restarted_mid_run(
    own_database: tuple[EmbeddedPostgres, str, InProcessStack], tmp_path: Path
) -> None:
    postgres, url, stack = own_database
    source = tmp_path / "source"
    expected = write_source(source)
    executor = freezing_executor(stack, tmp_path, "after_plan", lease=60)
    try:
        async with stack.http(stack.admin_token) as client:
            ingestion_id = await create_ingestion(client, source, f"faults.pg_{uuid.uuid4().hex[:6]}")
            run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
        await asyncio.to_thread(wait_until_stopped, executor)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        await asyncio.to_thread(postgres.stop)
        await asyncio.to_thread(postgres.start, port)
        executor.send_signal(signal.SIGCONT)  # it finds every pooled connection broken, and carries on
        run = await stack.wait_for_run(run_id, timeout=300)
        assert run["status"] == "SUCCESS", run
        assert run["rows_written"] == sum(expected.values())
        write_csv(source, "later.csv", rows=3, start=900)
        async with stack.http(stack.admin_token) as client:
            later = await run_once(stack, client, ingestion_id)
        assert (later["status"], later["files_processed"], later["rows_written"]) == ("SUCCESS", 1, 3)
    finally:
        executor.kill()
        executor.wait()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


async def test_s3_unavailable_fails_the_run_cleanly_and_the_next_run_loads_everything(
    loading_stack: InProcessStack, s3: S3Server
) -> None:
    bucket = s3.create_bucket()
    for n in range(3):
        s3.put_object(bucket, f"in/part-{n}.csv", "id,src\n" + "".join(f"{n}{i},part-{n}\n" for i in range(4)))
    table = f"faults.s3_{uuid.uuid4().hex[:6]}"
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = f"s3-down-{uuid.uuid4().hex[:6]}"
        body = {
            "ingestion_id": ingestion_id,
            "name": "s3 down",
            "source": {**s3.source(bucket, "in"), "format": "csv", "options": {"header": "true"}},
            "destination": {"table": table},
        }
        assert (await client.post("/api/v1/ingestions", json=body)).status_code == 201
        s3.pause()
        try:
            failed = await run_once(loading_stack, client, ingestion_id)
        finally:
            s3.resume()
        assert failed["status"] == "FAILED"
        assert "cannot list" in failed["error"], failed
        files = (await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files")).json()
        assert files["processed_files"] == []  # nothing was claimed
        loaded = await run_once(loading_stack, client, ingestion_id)
    assert (loaded["status"], loaded["files_processed"], loaded["rows_written"]) == ("SUCCESS", 3, 12)
    assert await loading_stack.sql(f"SELECT count(*), count(DISTINCT id) FROM {table}") == [["12", "12"]]


def java_child(process: subprocess.Popen[bytes]) -> psutil.Process:
    for child in psutil.Process(process.pid).children(recursive=True):
        if child.name() == "java":
            return child
    raise AssertionError("the executor has no Spark JVM")


async def test_spark_jvm_killed_mid_run(stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "source"
    expected = write_source(source)
    executor = freezing_executor(stack, tmp_path, "after_staged_commit", lease=5)
    standby: Standby | None = None
    try:
        async with stack.http(stack.admin_token) as client:
            ingestion_id = await create_ingestion(client, source, f"faults.jvm_{uuid.uuid4().hex[:6]}")
            run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
        await asyncio.to_thread(wait_until_stopped, executor)
        java_child(executor).kill()
        executor.send_signal(signal.SIGCONT)
        assert await asyncio.to_thread(executor.wait, 120) == 70  # it notices Spark is gone and exits
        standby = Standby(stack, tmp_path)
        standby.resume()  # a fresh executor takes the run over and publishes the staged batch
        run = await stack.wait_for_run(run_id, timeout=300)
        assert run["status"] == "SUCCESS", run
        counted = await standby.sql(f"SELECT src, count(*) FROM faults.{run['table'].split('.')[1]} GROUP BY src")
        assert {src: int(n) for src, n in counted} == expected
    finally:
        if executor.poll() is None:
            executor.kill()
        if standby is not None:
            standby.stop()
