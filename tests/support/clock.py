"""A clock tests move forward by hand: real time plus an offset, so database times stay plausible."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ShiftedClock:
    def __init__(self) -> None:
        self._offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> None:
        self._offset += delta

    def advance_to(self, moment: datetime) -> None:
        """Move forward so that now() is at least moment."""
        gap = moment - self.now()
        if gap > timedelta():
            self._offset += gap
