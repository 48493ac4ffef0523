"""Cron schedules fired by the control service, driven by a clock the tests move (no sleeping for ticks).

Runs go through the real tracker; on `loading_stack` a real executor loads them. Schedulers built here share
the stack's database, as extra control replicas would.
"""

from __future__ import annotations

import asyncio
import uuid
import zoneinfo
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio

from services.control.models import Schedule
from services.control.schedule import next_fire_after
from services.control.schedule_repository import ScheduleRepository
from services.control.scheduler import Scheduler
from services.control.tracker_client import TrackerClient
from services.shared.db import create_pool
from tests.support.clock import ShiftedClock
from tests.support.runs import create_ingestion, write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

# Ingestions made here: their runs left queued on the no-worker stack are cancelled after each test.
CREATED: list[str] = []


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def ingestion(client: httpx.AsyncClient, ingestion_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/ingestions/{ingestion_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ticks(client: httpx.AsyncClient, ingestion_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/ingestions/{ingestion_id}/schedule-ticks")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json().get("ticks", [])
    return found


async def runs(client: httpx.AsyncClient, ingestion_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json().get("runs", [])
    return found


class Replica:
    """A scheduler with its own pool and tracker channel, like another control process would have."""

    def __init__(self, stack: InProcessStack, clock: ShiftedClock) -> None:
        self._stack, self._clock = stack, clock

    async def __aenter__(self) -> Scheduler:
        self._pool = await create_pool(self._stack.database_url, service="replica", max_size=2)
        self._channel = grpc.aio.insecure_channel(self._stack.tracker.address)
        return Scheduler(
            ScheduleRepository(self._pool),
            TrackerClient(self._channel, self._stack.executor_token),
            self._clock,
            service_token=self._stack.executor_token,
        )

    async def __aexit__(self, *exc: object) -> None:
        await self._channel.close()
        await self._pool.close()


@pytest_asyncio.fixture(loop_scope="session")
async def api(stack: InProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    """The no-worker stack: scheduled runs stay QUEUED; every run a test leaves is cancelled after it."""
    async with stack.http(stack.admin_token) as client:
        yield client
        for ingestion_id in CREATED:
            listed = await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")  # 404: made on loading_stack
            for run in listed.json().get("runs", []) if listed.status_code == 200 else []:
                if run["status"] in ("QUEUED", "RUNNING"):
                    await client.post(f"/api/v1/runs/{run['run_id']}/cancel")


async def scheduled(client: httpx.AsyncClient, tmp_path: Path, cron: str, timezone: str = "") -> str:
    write_csv(tmp_path / "src", "a.csv", 3)
    table = f"sched.t_{uuid.uuid4().hex[:8]}"
    created = await create_ingestion(client, tmp_path / "src", table, schedule={"cron": cron, "timezone": timezone})
    CREATED.append(created)
    return created


async def test_a_cron_schedule_runs_the_ingestion_at_its_next_tick(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    clock = loading_stack.clock
    assert isinstance(clock, ShiftedClock)
    scheduler = loading_stack.control.background["scheduler"]
    async with loading_stack.http(loading_stack.admin_token) as client:
        before = clock.now()
        ingestion_id = await scheduled(client, tmp_path, "*/10 * * * *", "Europe/Berlin")
        next_fire = parse_time((await ingestion(client, ingestion_id))["next_fire_time"])
        expected = next_fire_after(Schedule("*/10 * * * *", "Europe/Berlin"), before)
        assert next_fire in (expected, next_fire_after(Schedule("*/10 * * * *"), expected))
        assert next_fire.minute % 10 == 0 and next_fire.second == 0

        clock.advance_to(next_fire - timedelta(seconds=1))
        assert [t for t in await scheduler.tick_once() if t.ingestion_id == ingestion_id] == []
        assert await runs(client, ingestion_id) == []

        clock.advance_to(next_fire)
        fired = [t for t in await scheduler.tick_once() if t.ingestion_id == ingestion_id]
        assert [(t.outcome, t.tick_time, t.missed_ticks) for t in fired] == [("FIRED", next_fire, 0)]
        run = await loading_stack.wait_for_run(fired[0].run_id)
        assert (run["status"], run["trigger"], run["rows_written"]) == ("SUCCESS", "schedule", 3), run

        listed = await ticks(client, ingestion_id)
        assert [(t["outcome"], t["run_id"], parse_time(t["tick_time"])) for t in listed] == [
            ("FIRED", run["run_id"], next_fire)
        ]
        assert parse_time((await ingestion(client, ingestion_id))["next_fire_time"]) == next_fire + timedelta(
            minutes=10
        )


async def test_a_tick_while_a_run_is_active_is_skipped_and_recorded(
    stack: InProcessStack, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    clock = ShiftedClock()
    ingestion_id = await scheduled(api, tmp_path, "* * * * *")
    first_tick = parse_time((await ingestion(api, ingestion_id))["next_fire_time"])
    async with Replica(stack, clock) as scheduler:
        clock.advance_to(first_tick)
        fired = await scheduler.tick_once()
        clock.advance_to(first_tick + timedelta(minutes=1))
        skipped = await scheduler.tick_once()
    mine = [t for t in fired + skipped if t.ingestion_id == ingestion_id]
    assert [t.outcome for t in mine] == ["FIRED", "SKIPPED"]
    assert mine[1].run_id == mine[0].run_id and "already has an active run" in mine[1].detail
    listed = await ticks(api, ingestion_id)
    assert [(t["outcome"], t["run_id"]) for t in listed] == [("SKIPPED", mine[0].run_id), ("FIRED", mine[0].run_id)]
    assert len(await runs(api, ingestion_id)) == 1


async def test_ticks_missed_while_no_scheduler_ran_fold_into_one_run(
    stack: InProcessStack, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    clock = ShiftedClock()
    ingestion_id = await scheduled(api, tmp_path, "*/5 * * * *")
    first_tick = parse_time((await ingestion(api, ingestion_id))["next_fire_time"])
    clock.advance_to(first_tick + timedelta(minutes=23))  # due times at +0, +5, +10, +15, +20 passed
    async with Replica(stack, clock) as scheduler:
        mine = [t for t in await scheduler.tick_once() if t.ingestion_id == ingestion_id]
    assert [(t.outcome, t.tick_time, t.missed_ticks) for t in mine] == [
        ("FIRED", first_tick + timedelta(minutes=20), 4)
    ]
    assert len(await runs(api, ingestion_id)) == 1
    assert parse_time((await ingestion(api, ingestion_id))["next_fire_time"]) == first_tick + timedelta(minutes=25)


async def test_with_several_replicas_a_tick_fires_once(
    stack: InProcessStack, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    clock = ShiftedClock()
    ingestion_ids = []
    for n in range(5):
        ingestion_ids.append(await scheduled(api, tmp_path / str(n), "*/15 * * * *"))
    latest = max([parse_time((await ingestion(api, i))["next_fire_time"]) for i in ingestion_ids])
    clock.advance_to(latest)
    async with Replica(stack, clock) as one, Replica(stack, clock) as two, Replica(stack, clock) as three:
        results = await asyncio.gather(one.tick_once(), two.tick_once(), three.tick_once())
    handled = [t for result in results for t in result if t.ingestion_id in ingestion_ids]
    assert sorted(t.ingestion_id for t in handled) == sorted(ingestion_ids)
    assert all(t.outcome == "FIRED" for t in handled), handled
    for ingestion_id in ingestion_ids:
        assert len(await runs(api, ingestion_id)) == 1
        assert len(await ticks(api, ingestion_id)) == 1


async def test_a_paused_ingestion_is_not_scheduled_and_resumes_from_now(
    stack: InProcessStack, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    clock = ShiftedClock()
    ingestion_id = await scheduled(api, tmp_path, "* * * * *")
    paused = await api.patch(f"/api/v1/ingestions/{ingestion_id}", json={"enabled": False})
    assert paused.status_code == 200, paused.text
    assert "next_fire_time" not in paused.json()
    clock.advance(timedelta(minutes=10))
    async with Replica(stack, clock) as scheduler:
        assert [t for t in await scheduler.tick_once() if t.ingestion_id == ingestion_id] == []
    manual = await api.post(f"/api/v1/ingestions/{ingestion_id}/run")
    assert manual.status_code == 409 and "paused" in manual.json()["message"], manual.text

    resumed = await api.patch(f"/api/v1/ingestions/{ingestion_id}", json={"enabled": True})
    assert resumed.status_code == 200, resumed.text
    resumed_at = parse_time(resumed.json()["next_fire_time"])
    assert datetime.now(UTC) < resumed_at <= datetime.now(UTC) + timedelta(minutes=1)
    assert await runs(api, ingestion_id) == [] and await ticks(api, ingestion_id) == []


async def test_a_schedule_change_moves_the_next_fire_time_and_other_changes_keep_it(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    ingestion_id = await scheduled(api, tmp_path, "0 2 * * *", "America/New_York")
    first = parse_time((await ingestion(api, ingestion_id))["next_fire_time"])
    assert first.astimezone(zoneinfo.ZoneInfo("America/New_York")).hour == 2
    renamed = await api.patch(f"/api/v1/ingestions/{ingestion_id}", json={"name": "renamed"})
    assert parse_time(renamed.json()["next_fire_time"]) == first
    moved = await api.patch(f"/api/v1/ingestions/{ingestion_id}", json={"schedule": {"cron": "30 * * * *"}})
    assert moved.status_code == 200, moved.text
    assert parse_time(moved.json()["next_fire_time"]).minute == 30
    bad = await api.patch(f"/api/v1/ingestions/{ingestion_id}", json={"schedule": {"cron": "61 * * * *"}})
    assert bad.status_code == 400 and "schedule.cron" in bad.text
