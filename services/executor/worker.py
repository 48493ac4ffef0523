"""The executor's pull loop: claim a run from the tracker, execute it, repeat. When idle it waits for the tracker
to announce work (at most poll_seconds), then claims."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable

from services.executor.discover import SourceLimits
from services.executor.load import TableLoader
from services.executor.pipeline import RunExecutor
from services.executor.preview import answer_preview
from services.executor.tracker_client import ExecutorTrackerClient
from services.shared.logging import get_logger
from services.shared.metrics import ServiceMetrics

_log = get_logger("worker")


def executor_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    def __init__(
        self,
        tracker: ExecutorTrackerClient,
        start_loader: Callable[[], TableLoader],
        *,
        lease_seconds: int,
        poll_seconds: float,
        metrics: ServiceMetrics | None = None,
        limits: SourceLimits | None = None,
    ) -> None:
        metrics = metrics or ServiceMetrics("executor")
        self._runs_seconds = metrics.histogram(
            "autoloader_executor_run_seconds", "Time this executor spent on each run it claimed"
        )
        self._previews = metrics.counter("autoloader_executor_previews", "Previews this executor answered")
        self._tracker = tracker
        self._start_loader = start_loader
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._limits = limits or SourceLimits()  # where sources may lead, for runs and previews
        self._loader: TableLoader | None = None
        self._loader_lock = asyncio.Lock()  # one SparkSession, even when a SQL call and the loop race for it
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.executor_id = executor_id()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="executor-worker")

    async def stop(self, grace: float) -> None:
        """Take no new run; give the current one `grace` seconds. A run cut short is taken over later."""
        self._stopping.set()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=grace)
            if not done:
                self._task.cancel()

    async def loader(self) -> TableLoader:
        """The Spark side, started on first use."""
        return await self._ensure_loader()

    async def _ensure_loader(self) -> TableLoader:
        async with self._loader_lock:
            if self._loader is None:
                # One long-lived SparkSession per executor; starting it takes seconds, so it happens once.
                self._loader = await asyncio.to_thread(self._start_loader)
                _log.info("spark ready")
            return self._loader

    async def _run_forever(self) -> None:
        runner: RunExecutor | None = None
        while not self._stopping.is_set():
            try:
                loader = await self._ensure_loader()
                runner = runner or RunExecutor(
                    self._tracker, loader, lease_seconds=self._lease_seconds, limits=self._limits
                )
                # Previews first: someone is waiting for each, and one takes a listing, not a Spark job.
                preview = await self._tracker.claim_preview(self.executor_id)
                if preview is not None:
                    await answer_preview(self._tracker, loader, preview, self._limits)
                    self._previews.inc()
                    continue
                claim = await self._tracker.claim_run(self.executor_id, self._lease_seconds)
                if claim is not None:
                    with self._runs_seconds.time():
                        await runner.execute(claim)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("worker loop error; retrying")
                await asyncio.sleep(max(self._poll_seconds, 5.0))
                continue
            await self._idle()

    async def _idle(self) -> None:
        """Until work may be waiting, at most poll_seconds, or until stopped.

        The tracker wakes the wait when a run or preview is queued; the executor then claims it itself. The
        wait still ends every poll_seconds, so runs whose lease ran out are taken over as before."""
        waiting = asyncio.create_task(self._wait_for_work())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiting, stopping):
                task.cancel()
            await asyncio.gather(waiting, stopping, return_exceptions=True)

    async def _wait_for_work(self) -> None:
        started = time.monotonic()
        try:
            await self._tracker.wait_for_work(self.executor_id, self._poll_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # an older tracker, or one that is unreachable: poll instead
            _log.debug("waiting for work failed; polling", error=str(error))
            await asyncio.sleep(max(0.0, self._poll_seconds - (time.monotonic() - started)))
