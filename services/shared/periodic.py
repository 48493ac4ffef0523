"""A background task that calls one async step every poll interval until stopped (schedulers, senders)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from services.shared.logging import get_logger

_log = get_logger("periodic")


class Periodic:
    """Calls step() every poll_seconds; a step that returns True (more work waiting) is called again at once.
    A failing step is logged and retried on the next tick, never ending the loop."""

    def __init__(self, name: str, step: Callable[[], Awaitable[bool]], poll_seconds: float) -> None:
        self._name = name
        self._step = step
        self._poll_seconds = poll_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if await self._step():
                    continue
            except Exception:
                _log.exception("background step failed; retrying", task=self._name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._poll_seconds)
