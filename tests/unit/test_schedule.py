"""Cron arithmetic of schedules: next fire times in a time zone, and how late ticks fold into one."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.control.models import Ingestion, Schedule
from services.control.schedule import MAX_COUNTED_TICKS, due_tick, next_fire_after
from services.control.scheduler import Scheduler, _active_run, with_next_fire_time
from services.shared.errors import Unavailable

BERLIN = Schedule(cron="0 2 * * *", timezone="Europe/Berlin")


class FixedClock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_next_fire_time_is_strictly_after_and_in_utc() -> None:
    every_five = Schedule(cron="*/5 * * * *")
    assert next_fire_after(every_five, utc(2026, 11, 26, 6, 2)) == utc(2026, 11, 26, 6, 5)
    assert next_fire_after(every_five, utc(2026, 11, 26, 6, 5)) == utc(2026, 11, 26, 6, 10)
    assert next_fire_after(every_five, utc(2026, 11, 26, 6, 2)).tzinfo == UTC


def test_cron_fields_are_read_in_the_time_zone_across_daylight_saving_changes() -> None:
    winter = next_fire_after(BERLIN, utc(2026, 1, 10, 12))
    summer = next_fire_after(BERLIN, utc(2026, 7, 10, 12))
    assert (winter.hour, summer.hour) == (1, 0)  # 02:00 CET and 02:00 CEST
    for fired in (winter, summer):
        assert fired.astimezone(ZoneInfo("Europe/Berlin")).hour == 2
    # The night clocks jump from 02:00 to 03:00 has no 02:00: the schedule fires once, not never or twice.
    around = [next_fire_after(BERLIN, utc(2026, 3, 28, 12))]
    around.append(next_fire_after(BERLIN, around[0]))
    assert around[1] - around[0] >= timedelta(hours=23)


def test_nothing_is_due_before_the_next_fire_time() -> None:
    assert due_tick(Schedule(cron="0 * * * *"), utc(2026, 1, 1, 10), utc(2026, 1, 1, 9, 59, 59)) is None


def test_a_due_time_fires_with_no_missed_ticks() -> None:
    tick = due_tick(Schedule(cron="0 * * * *"), utc(2026, 1, 1, 10), utc(2026, 1, 1, 10, 0, 1))
    assert tick is not None
    assert (tick.tick_time, tick.missed_ticks, tick.next_fire_time) == (utc(2026, 1, 1, 10), 0, utc(2026, 1, 1, 11))


def test_due_times_missed_while_down_fold_into_the_latest() -> None:
    tick = due_tick(Schedule(cron="0 * * * *"), utc(2026, 1, 1, 10), utc(2026, 1, 1, 14, 30))
    assert tick is not None
    assert (tick.tick_time, tick.missed_ticks, tick.next_fire_time) == (utc(2026, 1, 1, 14), 4, utc(2026, 1, 1, 15))


def test_a_very_long_outage_jumps_to_the_present() -> None:
    every_minute = Schedule(cron="* * * * *")
    tick = due_tick(every_minute, utc(2026, 1, 1), utc(2026, 3, 1, 0, 0, 30))
    assert tick is not None
    assert tick.missed_ticks == MAX_COUNTED_TICKS
    assert (tick.tick_time, tick.next_fire_time) == (utc(2026, 3, 1), utc(2026, 3, 1, 0, 1))


@pytest.mark.parametrize(
    ("schedule", "enabled", "expected"),
    [
        (None, True, None),
        (Schedule(cron="30 * * * *"), False, None),
        (Schedule(cron="30 * * * *"), True, utc(2026, 1, 1, 10, 30)),
    ],
)
def test_only_enabled_scheduled_ingestions_get_a_next_fire_time(
    schedule: Schedule | None, enabled: bool, expected: datetime | None
) -> None:
    ingestion = Ingestion(schedule=schedule, enabled=enabled, next_fire_time=utc(2020, 1, 1))
    assert with_next_fire_time(ingestion, FixedClock(utc(2026, 1, 1, 10, 5))).next_fire_time == expected


def test_the_active_run_is_read_from_the_conflict_message() -> None:
    message = "ingestion 'x' already has an active run: run-0a1b2c3d4e5f (RUNNING)"
    assert _active_run(message) == "run-0a1b2c3d4e5f"
    assert _active_run("another run") == ""


class _StillDue:
    """Stands in for a due schedule whose tick cannot be recorded (the test fails if it is)."""

    def __init__(self, ingestion: Ingestion) -> None:
        self.ingestion = ingestion

    async def record(self, tick: object, next_fire_time: datetime) -> None:
        raise AssertionError("nothing may be recorded while the tracker is down")


class _AlwaysDue:
    """A full batch of due schedules on every call, as a database would return while none is handled."""

    def __init__(self) -> None:
        self.calls = 0

    @contextlib.asynccontextmanager
    async def due(self, now: datetime, limit: int) -> AsyncIterator[list[_StillDue]]:
        self.calls += 1
        ingestion = Ingestion(ingestion_id="x", schedule=Schedule(cron="* * * * *"), next_fire_time=utc(2026, 1, 1))
        yield [_StillDue(ingestion) for _ in range(limit)]


class _TrackerDown:
    async def create_run(self, ingestion: Ingestion, trigger: str) -> None:
        raise Unavailable("tracker failed: UNAVAILABLE")


async def test_a_pass_ends_when_the_tracker_is_down_and_every_tick_stays_due() -> None:
    schedules = _AlwaysDue()
    scheduler = Scheduler(
        schedules,  # type: ignore[arg-type]
        _TrackerDown(),  # type: ignore[arg-type]
        FixedClock(utc(2026, 1, 1, 0, 5)),
        service_token="t",
    )
    assert await scheduler.tick_once() == []
    assert schedules.calls == 1
