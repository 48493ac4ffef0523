"""Named crash points for exactly-once tests. Off unless AUTOLOADER_FAILPOINTS names them.

AUTOLOADER_FAILPOINTS="after_plan" kills this process with SIGKILL (no cleanup) when a run reaches that point;
"after_plan=stop" freezes it with SIGSTOP instead (a zombie whose lease runs out while it sleeps).
Several points may be listed, comma-separated. Each fires once per process.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

POINTS = (
    "after_lease",
    "after_listing",
    "after_plan",
    "inside_write",
    "after_staged_commit",
    "after_publish",
    "inside_finalize",
)
_SIGNALS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}
_fired: set[str] = set()


@functools.cache
def _configured() -> dict[str, signal.Signals]:
    points = {}
    for item in filter(None, (part.strip() for part in os.environ.get("AUTOLOADER_FAILPOINTS", "").split(","))):
        name, _, action = item.partition("=")
        if name not in POINTS or (action or "kill") not in _SIGNALS:
            raise ValueError(f"AUTOLOADER_FAILPOINTS: unknown failpoint {item!r}; known: {', '.join(POINTS)}")
        points[name] = _SIGNALS[action or "kill"]
    return points


def armed(name: str) -> bool:
    return name in _configured() and name not in _fired


def hit(name: str) -> None:
    """Crash (or freeze) here if this point is armed."""
    if armed(name):
        _fired.add(name)
        os.kill(os.getpid(), _configured()[name])


@contextmanager
def during(name: str, busy: Callable[[], bool], poll_seconds: float = 0.002) -> Iterator[None]:
    """Crash while the block runs and `busy()` is true (e.g. while a Spark job is active)."""
    if not armed(name):
        yield
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if busy():
                hit(name)
            time.sleep(poll_seconds)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
    hit(name)  # the block ended before the watcher saw it busy: crash right after instead


def soon(name: str, delay_seconds: float = 0.005) -> None:
    """Crash a moment from now, from another thread: lands inside the call that follows."""
    if armed(name):
        threading.Timer(delay_seconds, hit, args=(name,)).start()
