"""Cron arithmetic for schedules: when a schedule fires next, and which due times a late scheduler folds into
one run. Pure functions on timezone-aware datetimes; the caller supplies "now"."""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter

from services.control.models import Schedule

# A scheduler that was down for longer than this many due times reports the count as at least this.
MAX_COUNTED_TICKS = 10_000


def _zone(schedule: Schedule) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(schedule.timezone or "UTC")


def next_fire_after(schedule: Schedule, moment: datetime) -> datetime:
    """The first due time strictly after moment, in UTC. Cron fields are read in the schedule's time zone,
    so "0 2 * * *" in Europe/Berlin is 02:00 Berlin time on both sides of a DST change."""
    local = moment.astimezone(_zone(schedule))
    following: datetime = croniter(schedule.cron, local).get_next(datetime)
    return following.astimezone(UTC)


@dataclass(frozen=True)
class DueTick:
    """The due time a scheduler acts on now, and how many earlier ones it folds into it."""

    tick_time: datetime
    missed_ticks: int
    next_fire_time: datetime


def due_tick(schedule: Schedule, next_fire_time: datetime, now: datetime) -> DueTick | None:
    """None when next_fire_time is still ahead; else the latest due time at or before now (missed ones
    coalesce into it) and the next due time after now."""
    if next_fire_time > now:
        return None
    latest, missed = next_fire_time, 0
    while missed < MAX_COUNTED_TICKS:
        following = next_fire_after(schedule, latest)
        if following > now:
            return DueTick(tick_time=latest, missed_ticks=missed, next_fire_time=following)
        latest, missed = following, missed + 1
    # Down for very long: jump straight to the present instead of walking every due time.
    latest = _latest_at_or_before(schedule, now)
    return DueTick(tick_time=latest, missed_ticks=missed, next_fire_time=next_fire_after(schedule, now))


def _latest_at_or_before(schedule: Schedule, now: datetime) -> datetime:
    local = (now + timedelta(seconds=1)).astimezone(_zone(schedule))
    previous: datetime = croniter(schedule.cron, local).get_prev(datetime)
    return previous.astimezone(UTC)
