"""An idle executor waits in WaitForWork and is woken when a run is queued: it claims the run at once, not at
its next poll (set to 30 s here, so the test cannot pass by polling). The wait itself claims nothing."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import grpc
import pytest

from autoloader.tracker.v1 import tracker_pb2 as tpb
from autoloader.tracker.v1 import tracker_pb2_grpc as tpb_grpc
from services.shared.db import Listener, create_pool
from services.tracker.work_signal import CHANNEL
from tests.support.executors import start_executor, stop, wait_for_log
from tests.support.runs import create_ingestion
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

POLL_SECONDS = 30.0


@pytest.fixture
def slow_polling_executor(stack: InProcessStack, tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "executor"
    process = start_executor(stack, home, str(tmp_path / "warehouse"), {"AUTOLOADER_POLL_SECONDS": str(POLL_SECONDS)})
    try:
        wait_for_log(home, "spark ready")
        yield home
    finally:
        stop([process])


def seconds_between(earlier: str, later: str) -> float:
    return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()


async def test_a_queued_run_is_claimed_at_once_by_a_waiting_executor(
    stack: InProcessStack, slow_polling_executor: Path, tmp_path: Path
) -> None:
    source = tmp_path / "empty"
    source.mkdir()
    async with stack.http(stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, f"itest.wait_{uuid.uuid4().hex[:6]}")
        for _ in range(3):
            # Long enough for the executor to have polled once and to be waiting again.
            await asyncio.sleep(1.0)
            started = time.monotonic()
            queued = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
            assert queued.status_code == 202, queued.text
            run = await stack.wait_for_run(queued.json()["run_id"], timeout=POLL_SECONDS / 2)
            assert time.monotonic() - started < POLL_SECONDS / 3
            assert (run["status"], run["files_processed"]) == ("SUCCESS", 0), run
            assert seconds_between(run["create_time"], run["start_time"]) < 2.0, run


async def test_waiting_claims_nothing_and_times_out(stack: InProcessStack) -> None:
    async with grpc.aio.insecure_channel(stack.tracker.address) as channel:
        tracker = tpb_grpc.TrackerServiceStub(channel)
        metadata = (("authorization", f"Bearer {stack.executor_token}"),)
        started = time.monotonic()
        response = await tracker.WaitForWork(
            tpb.WaitForWorkRequest(executor_id="test-waiter", timeout_millis=300), metadata=metadata
        )
        assert not response.work_queued
        assert 0.25 <= time.monotonic() - started < 5

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await tracker.WaitForWork(
                tpb.WaitForWorkRequest(executor_id="test-waiter", timeout_millis=120_000), metadata=metadata
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_notification_from_another_replica_wakes_the_listener(stack: InProcessStack) -> None:
    heard = asyncio.Event()
    listener = Listener(stack.database_url, CHANNEL, heard.set, service="tests")
    listener.start()
    try:
        await asyncio.wait_for(heard.wait(), 10)  # once on connecting: a notice may have been missed
        heard.clear()
        pool = await create_pool(stack.database_url, service="tests", max_size=1)
        try:
            await pool.execute("SELECT pg_notify($1, '')", CHANNEL)
        finally:
            await pool.close()
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        await listener.close()
