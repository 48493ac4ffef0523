"""Cancelling runs through the real services: a queued run ends at once; a running one has its Spark jobs
cancelled by its executor, commits nothing, releases its files, and the next run loads them once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from pyspark import SparkContext

from tests.integration.test_run_files import count_rows, create_ingestion, csv_text, file_records, new_table, write
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

BIG_ROWS = 2_000_000


def write_big_csv(path: Path) -> None:
    """A CSV file Spark needs seconds for on these machines, so a cancel lands while its job runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("id,name,amount\n")
        for start in range(0, BIG_ROWS, 100_000):
            out.write("".join(f"{i},user-{i},{i % 997}.25\n" for i in range(start, start + 100_000)))


def spark_jobs_of(run_id: str) -> list[int]:
    context = SparkContext._active_spark_context
    if context is None or getattr(context, "_jsc", None) is None:  # not started, or still starting
        return []
    return list(context.statusTracker().getJobIdsForGroup(run_id))


async def test_a_queued_run_is_cancelled_at_once_and_an_ended_one_cannot_be(
    stack: InProcessStack, tmp_path: Path
) -> None:
    async with stack.http(stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, tmp_path, new_table("queued"), "csv")
        queued = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()
        cancelled = await client.post(f"/api/v1/runs/{queued['run_id']}/cancel", json={})
        assert cancelled.status_code == 200, cancelled.text
        body = cancelled.json()
        assert (body["status"], body["cancel_requested"]) == ("CANCELLED", True)
        assert body["error"].startswith("cancelled by ") and "end_time" in body
        again = await client.post(f"/api/v1/runs/{queued['run_id']}/cancel", json={})
        assert again.status_code == 200 and again.json()["status"] == "CANCELLED"
        # The ingestion is free again: a new run can be queued.
        second = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
        assert second.status_code == 202, second.text
        await client.post(f"/api/v1/runs/{second.json()['run_id']}/cancel", json={})


async def test_a_finished_run_cannot_be_cancelled(loading_stack: InProcessStack, tmp_path: Path) -> None:
    write(tmp_path / "a.csv", csv_text(range(2)))
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, tmp_path, new_table("ended"), "csv")
        run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
        assert (await loading_stack.wait_for_run(run_id))["status"] == "SUCCESS"
        late = await client.post(f"/api/v1/runs/{run_id}/cancel", json={})
    assert late.status_code == 409 and "already ended (SUCCESS)" in late.json()["message"], late.text


async def test_a_running_run_stops_its_spark_job_commits_nothing_and_releases_its_files(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    await asyncio.to_thread(write_big_csv, source / "big.csv")
    write(source / "small.csv", "id,name,amount\n1,a,1.5\n")
    table = new_table("cancelled")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv")
        run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
        deadline = time.monotonic() + 120
        while not spark_jobs_of(run_id):  # wait until the run's Spark work is under way
            assert time.monotonic() < deadline, "the run never started a Spark job"
            await asyncio.sleep(0.05)
        response = await client.post(f"/api/v1/runs/{run_id}/cancel", json={})
        assert response.status_code == 200 and response.json()["cancel_requested"] is True, response.text
        asked = time.monotonic()
        run = await loading_stack.wait_for_run(run_id, timeout=60)
        stopped_after = time.monotonic() - asked

        assert run["status"] == "CANCELLED", run
        assert "nothing was committed" in run["error"] and "snapshot_id" not in run
        assert stopped_after < 30, stopped_after
        assert await file_records(client, ingestion_id) == []  # claims released: both files are new again
        tables = await loading_stack.sql(f"SHOW TABLES IN {table.split('.')[0]} LIKE '{table.split('.')[1]}'")
        assert tables == [] or await count_rows(loading_stack, table) == 0

        again = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
        rerun = await loading_stack.wait_for_run(again, timeout=300)
    assert (rerun["status"], rerun["files_processed"], rerun["rows_written"]) == ("SUCCESS", 2, BIG_ROWS + 1)
    assert await count_rows(loading_stack, table) == BIG_ROWS + 1
