"""Fires scheduled runs. Every poll, each due ingestion gets one tick: a run is queued (FIRED), or, while
a run is still active, the tick is SKIPPED and recorded. Due times missed while no scheduler ran fold into
one run. Replicas share the work through row locks, so a due time fires once however many are running."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from services.control.models import Ingestion
from services.control.schedule import due_tick, next_fire_after
from services.control.schedule_repository import DueSchedule, ScheduleRepository, TickRecord
from services.control.tracker_client import TrackerClient
from services.shared.clock import Clock
from services.shared.errors import AlreadyExists, AutoloaderError, Unavailable
from services.shared.interceptors import acting_as
from services.shared.logging import get_logger

_log = get_logger("scheduler")
BATCH = 100


class Scheduler:
    def __init__(
        self,
        schedules: ScheduleRepository,
        tracker: TrackerClient,
        clock: Clock,
        *,
        service_token: str,
        on_tick: Callable[[TickRecord], None] = lambda _: None,
    ) -> None:
        self._on_tick = on_tick
        self._schedules = schedules
        self._tracker = tracker
        self._clock = clock
        self._token = service_token

    async def poll(self) -> bool:
        """One pass for the background loop; it has nothing more to do until the next poll."""
        await self.tick_once()
        return False

    async def tick_once(self) -> list[TickRecord]:
        """Handle every schedule that is due now; return what was recorded."""
        recorded: list[TickRecord] = []
        while True:
            now = self._clock.now()
            handled = 0
            async with self._schedules.due(now, BATCH) as due:
                for schedule in due:
                    tick = await self._handle(schedule, now)
                    if tick is not None:
                        recorded.append(tick)
                        handled += 1
            # A full batch may hide more due schedules; one where nothing could be handled (tracker down)
            # would only come back the same, so the next poll tries again.
            if len(due) < BATCH or handled == 0:
                return recorded

    async def _handle(self, due: DueSchedule, now: datetime) -> TickRecord | None:
        ingestion = due.ingestion
        assert ingestion.schedule is not None and ingestion.next_fire_time is not None
        tick = due_tick(ingestion.schedule, ingestion.next_fire_time, now)
        if tick is None:
            return None
        try:
            with acting_as(self._token):
                run = await self._tracker.create_run(ingestion, trigger="schedule")
            outcome, run_id, detail = "FIRED", run.run_id, ""
        except AlreadyExists as error:
            outcome, run_id, detail = "SKIPPED", _active_run(error.message), error.message
        except Unavailable as error:
            # Leave the tick due: the next poll tries again, and nothing was recorded twice.
            _log.warning("tracker unreachable; tick stays due", error=error.message)
            return None
        except AutoloaderError as error:
            outcome, run_id, detail = "FAILED", "", error.message
        record = TickRecord(
            ingestion_id=ingestion.ingestion_id,
            tick_time=tick.tick_time,
            outcome=outcome,
            run_id=run_id,
            missed_ticks=tick.missed_ticks,
            detail=detail,
            handle_time=now,
        )
        await due.record(record, tick.next_fire_time)
        self._on_tick(record)
        _log.info(
            "schedule tick",
            ingestion_id=ingestion.ingestion_id,
            outcome=outcome,
            run_id=run_id,
            missed_ticks=tick.missed_ticks,
        )
        return record


def _active_run(message: str) -> str:
    """The run id the tracker names in its 'already has an active run: run-… (RUNNING)' message."""
    for word in message.split():
        if word.startswith("run-"):
            return word
    return ""


def with_next_fire_time(ingestion: Ingestion, clock: Clock) -> Ingestion:
    """The ingestion with its next fire time set from now: none when unscheduled or paused."""
    if ingestion.schedule is None or not ingestion.schedule.cron or not ingestion.enabled:
        return replace(ingestion, next_fire_time=None)
    return replace(ingestion, next_fire_time=next_fire_after(ingestion.schedule, clock.now()))
