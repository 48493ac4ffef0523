"""Two executor processes pull from one tracker: every run executes once, and both take work."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.executors import start_executor, stop
from tests.support.runs import create_ingestion, write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


@pytest.fixture
def two_executors(stack: InProcessStack, tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    processes = [start_executor(stack, tmp_path / f"executor-{n}", str(tmp_path / "warehouse")) for n in range(2)]
    try:
        yield processes
    finally:
        stop(processes)


async def test_two_executors_share_runs_without_running_any_twice(
    stack: InProcessStack, two_executors: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    runs_wanted = 6
    async with stack.http(stack.admin_token) as client:
        ids, tables = [], []
        for n in range(runs_wanted):
            source = tmp_path / f"source-{n}"
            for part in range(3):
                write_csv(source, f"part-{part}.csv", rows=4, start=part * 4)
            tables.append(f"shared.t{n}_{uuid.uuid4().hex[:6]}")
            ids.append(await create_ingestion(client, source, tables[-1]))
        started = time.monotonic()
        run_ids = []
        for ingestion_id in ids:
            response = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
            assert response.status_code == 202, response.text
            run_ids.append(response.json()["run_id"])
        finished = await asyncio.gather(*(stack.wait_for_run(r, timeout=300) for r in run_ids))
        elapsed = time.monotonic() - started
    assert [r["status"] for r in finished] == ["SUCCESS"] * runs_wanted, finished
    assert [r["rows_written"] for r in finished] == [12] * runs_wanted
    executors = {r["executor_id"] for r in finished}
    assert len(executors) == 2, f"one executor did all the work: {executors}"
    assert all(p.poll() is None for p in two_executors)
    print(f"{runs_wanted} runs on 2 executors in {elapsed:.1f}s: {sorted(executors)}")
