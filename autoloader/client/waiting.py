"""Polling a run until it ends, for both clients."""

from __future__ import annotations

import time
from collections.abc import Callable

from autoloader.client.errors import RunTimeout
from autoloader.tracker.v1 import tracker_pb2

# A run in one of these states never changes again.
TERMINAL_STATUSES = frozenset({"SUCCESS", "PARTIAL_SUCCESS", "FAILED", "CANCELLED"})

ProgressCallback = Callable[[tracker_pb2.Run], None]


def poll_run(
    get_run: Callable[[], tracker_pb2.Run],
    *,
    timeout: float | None,
    poll: float,
    on_progress: ProgressCallback | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tracker_pb2.Run:
    """Read the run every `poll` seconds until it ends; return it. on_progress sees every reading.
    timeout None waits for ever; else RunTimeout (holding the last reading) once it has passed."""
    deadline = None if timeout is None else clock() + timeout
    while True:
        run = get_run()
        if on_progress is not None:
            on_progress(run)
        if run.status in TERMINAL_STATUSES:
            return run
        if deadline is not None:
            left = deadline - clock()
            if left <= 0:
                raise RunTimeout(run, timeout or 0.0)
            sleep(min(poll, left))
        else:
            sleep(poll)
