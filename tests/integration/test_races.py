"""Races: concurrent triggers, a zombie executor, clearing during a run, a foreign append during our commit."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.crash_matrix import Standby, write_source
from tests.support.executors import freezing_executor, wait_until_stopped
from tests.support.runs import create_ingestion, write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


async def rows_by_file(standby: Standby, table: str) -> dict[str, int]:
    """Rows per source file, counted through the standby executor (the catalog of this stack's database)."""
    async with standby.awake():
        rows = await standby.sql(f"SELECT src, count(*) FROM {table} GROUP BY src")
    return {src: int(n) for src, n in rows}


async def new_crash_ingestion(client: httpx.AsyncClient, source: Path) -> tuple[str, str]:
    table = f"races.t_{uuid.uuid4().hex[:6]}"
    return await create_ingestion(client, source, table), table


async def test_concurrent_triggers_make_exactly_one_active_run(stack: InProcessStack, tmp_path: Path) -> None:
    write_csv(tmp_path / "src", "a.csv", rows=1)
    async with stack.http(stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, tmp_path / "src", f"races.once_{uuid.uuid4().hex[:6]}")
        responses = await asyncio.gather(*(client.post(f"/api/v1/ingestions/{ingestion_id}/run") for _ in range(32)))
        runs = (await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")).json()["runs"]
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [409] * 31
    (accepted,) = [r.json() for r in responses if r.status_code == 202]
    assert all(accepted["run_id"] in r.json()["message"] for r in responses if r.status_code == 409)
    assert [r["run_id"] for r in runs] == [accepted["run_id"]]


async def test_zombie_executor_writes_nothing_after_its_run_was_taken_over(
    stack: InProcessStack, standby: Standby, workdir: Path
) -> None:
    source = workdir / f"zombie-{uuid.uuid4().hex[:6]}"
    expected = write_source(source)
    zombie = freezing_executor(stack, workdir, "after_staged_commit")
    try:
        async with stack.http(stack.admin_token) as client:
            ingestion_id, table = await new_crash_ingestion(client, source)
            run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
            await asyncio.to_thread(wait_until_stopped, zombie)
            standby.resume()  # takes the run over once the zombie's 5 s lease has run out
            try:
                finished = await stack.wait_for_run(run_id)
            finally:
                standby.freeze()
            assert finished["status"] == "SUCCESS", finished
            zombie.send_signal(signal.SIGCONT)  # the zombie wakes up and tries to publish and finish
            await asyncio.sleep(8)
            after: dict[str, Any] = (await client.get(f"/api/v1/runs/{run_id}")).json()
        assert after == finished  # the run record did not change
        assert await rows_by_file(standby, table) == expected  # no row added
    finally:
        zombie.kill()
        zombie.wait()


async def test_clearing_processed_files_during_a_run_keeps_that_runs_files(
    stack: InProcessStack, standby: Standby, workdir: Path
) -> None:
    source = workdir / f"clear-{uuid.uuid4().hex[:6]}"
    write_csv(source, "a.csv", rows=2)
    write_csv(source, "b.csv", rows=2, start=2)
    async with stack.http(stack.admin_token) as client:
        ingestion_id, _ = await new_crash_ingestion(client, source)
        standby.resume()
        try:
            first_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
            assert (await stack.wait_for_run(first_id))["files_processed"] == 2
        finally:
            standby.freeze()
        write_csv(source, "c.csv", rows=2, start=4)
        paused = freezing_executor(stack, workdir, "after_plan", lease=60)
        try:
            run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
            await asyncio.to_thread(wait_until_stopped, paused)
            cleared = (await client.delete(f"/api/v1/ingestions/{ingestion_id}/processed-files")).json()
            assert cleared["files_cleared"] == 2  # a.csv and b.csv; c.csv belongs to the run in progress
            paused.send_signal(signal.SIGCONT)
            finished = await stack.wait_for_run(run_id)
        finally:
            paused.kill()
            paused.wait()
        records = (await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files")).json()
    assert finished["status"] == "SUCCESS" and finished["files_processed"] == 1
    assert [(f["key"], f["status"]) for f in records["processed_files"]] == [("c.csv", "PROCESSED")]


async def test_foreign_append_between_stage_and_publish_adds_no_duplicate(
    stack: InProcessStack, standby: Standby, workdir: Path
) -> None:
    source = workdir / f"foreign-{uuid.uuid4().hex[:6]}"
    expected = write_source(source)
    paused = freezing_executor(stack, workdir, "after_staged_commit", lease=60)
    try:
        async with stack.http(stack.admin_token) as client:
            ingestion_id, table = await new_crash_ingestion(client, source)
            run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
            await asyncio.to_thread(wait_until_stopped, paused)
            # Someone else appends to the table while our batch is staged but not yet published.
            async with standby.awake():  # it cannot take the run: the paused executor's lease is valid
                await standby.sql(f"INSERT INTO {table} (id, src) VALUES ('9999', 'foreign')")
            paused.send_signal(signal.SIGCONT)
            finished = await stack.wait_for_run(run_id)
    finally:
        paused.kill()
        paused.wait()
    assert finished["status"] == "SUCCESS", finished
    assert await rows_by_file(standby, table) == {**expected, "foreign": 1}
