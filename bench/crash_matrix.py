"""Crash-point matrix: kill the executor at each failpoint, let a fresh executor take the run over, and count
duplicate and lost rows per source file.

    python -m bench.crash_matrix --kills 20            # every failpoint 20 times; prints the table

Each kill: a run over a few CSV files whose rows name their file (column `src`); an executor started with
AUTOLOADER_FAILPOINTS=<point> claims it and dies by SIGKILL at that point; a standby executor (kept frozen
with SIGSTOP so it cannot claim first) is resumed, takes the run over when the lease expires, and finishes it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from autoloader.executor.v1 import executor_pb2, executor_pb2_grpc
from services.executor.failpoints import POINTS
from services.shared import logging as service_logging
from tests.support.executors import executor_address, start_executor, wait_for_log
from tests.support.stack import InProcessStack, start_stack

FILES_PER_RUN = 4
ROWS_PER_FILE = 5
LEASE_SECONDS = 5


@dataclass(frozen=True)
class Outcome:
    failpoint: str
    status: str
    killed: bool
    duplicate_rows: int
    lost_rows: int
    records: dict[str, int]  # processed-file records by status
    seconds: float


def write_source(directory: Path) -> dict[str, int]:
    """CSV files whose every row carries its file name; returns rows per file."""
    directory.mkdir(parents=True)
    expected = {}
    for n in range(FILES_PER_RUN):
        name = f"part-{n}.csv"
        rows = [f"{n * 100 + i},{name}" for i in range(ROWS_PER_FILE)]
        (directory / name).write_text("id,src\n" + "\n".join(rows) + "\n")
        expected[name] = ROWS_PER_FILE
    return expected


def process_state(pid: int) -> str:
    """The one-letter state of a process in /proc (R, S, T for stopped, ...)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


class Standby:
    """An executor kept frozen until a crashed run needs taking over."""

    def __init__(self, stack: InProcessStack, workdir: Path) -> None:
        self.home = workdir / "standby"
        self._admin_token = stack.admin_token
        self.process = start_executor(
            stack, self.home, str(workdir / "warehouse"), {"AUTOLOADER_LEASE_SECONDS": str(LEASE_SECONDS)}
        )
        wait_for_log(self.home, "spark ready")
        self.freeze()

    async def sql(self, statement: str) -> list[list[str]]:
        """Spark SQL through this executor (it must be resumed)."""
        async with grpc.aio.insecure_channel(executor_address(self.home)) as channel:
            response = await executor_pb2_grpc.ExecutorServiceStub(channel).ExecuteSql(
                executor_pb2.ExecuteSqlRequest(statement=statement),
                metadata=(("authorization", f"Bearer {self._admin_token}"),),
                timeout=300,
            )
        return [list(row.values) for row in response.rows]

    @contextlib.asynccontextmanager
    async def awake(self) -> AsyncIterator[Standby]:
        """Resumed for the duration of the block (to run SQL, or to take a run over), then frozen again."""
        self.resume()
        try:
            yield self
        finally:
            self.freeze()

    def freeze(self) -> None:
        """SIGSTOP, and wait until the kernel reports the process stopped (state T)."""
        self.process.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while process_state(self.process.pid) != "T":
            if time.monotonic() > deadline:
                raise RuntimeError(f"standby {self.process.pid} did not stop")
            time.sleep(0.01)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.resume()
        self.process.terminate()
        self.process.wait(30)


async def crash_once(stack: InProcessStack, standby: Standby, failpoint: str, workdir: Path) -> Outcome:
    case = workdir / f"{failpoint}-{uuid.uuid4().hex[:6]}"
    expected = write_source(case / "source")
    table = f"crash.{failpoint}_{uuid.uuid4().hex[:6]}"
    crasher = start_executor(
        stack,
        case / "executor",
        str(workdir / "warehouse"),
        {"AUTOLOADER_FAILPOINTS": failpoint, "AUTOLOADER_LEASE_SECONDS": str(LEASE_SECONDS)},
    )
    try:
        wait_for_log(case / "executor", "spark ready")
        assert process_state(standby.process.pid) == "T", "the standby must be frozen while the crasher claims"
        started = time.monotonic()
        async with stack.http(stack.admin_token) as client:
            ingestion_id = f"crash-{uuid.uuid4().hex[:8]}"
            created = await client.post(
                "/api/v1/ingestions",
                json={
                    "ingestion_id": ingestion_id,
                    "name": f"crash at {failpoint}",
                    "source": {
                        "uri": (case / "source").as_uri() + "/",
                        "format": "csv",
                        "options": {"header": "true"},
                    },
                    "destination": {"table": table},
                },
            )
            assert created.status_code == 201, created.text
            run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
            killed = await asyncio.to_thread(_wait_for_exit, crasher, 180)
            standby.resume()
            try:
                run = await stack.wait_for_run(run_id, timeout=300)
                counted = await standby.sql(f"SELECT src, count(*) FROM {table} GROUP BY src")
            finally:
                standby.freeze()
            files = (await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files?page_size=1000")).json()
        loaded = Counter({src: int(n) for src, n in counted})
        duplicates = sum(max(0, loaded[name] - rows) for name, rows in expected.items())
        lost = sum(max(0, rows - loaded[name]) for name, rows in expected.items())
        records = Counter(str(f["status"]) for f in files["processed_files"])
        return Outcome(failpoint, run["status"], killed, duplicates, lost, dict(records), time.monotonic() - started)
    finally:
        if crasher.poll() is None:
            crasher.kill()
            crasher.wait()


def _wait_for_exit(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """True when the process died by SIGKILL (the failpoint fired)."""
    try:
        return process.wait(timeout) == -signal.SIGKILL
    except subprocess.TimeoutExpired:
        return False


def print_table(outcomes: list[Outcome]) -> str:
    lines = [
        f"{'failpoint':<22} {'kills':>5} {'duplicate rows':>15} {'lost rows':>10} {'runs SUCCESS':>13} {'s/kill':>7}"
    ]
    for point in POINTS:
        mine = [o for o in outcomes if o.failpoint == point]
        if not mine:
            continue
        lines.append(
            f"{point:<22} {sum(o.killed for o in mine):>5} {sum(o.duplicate_rows for o in mine):>15} "
            f"{sum(o.lost_rows for o in mine):>10} {sum(o.status == 'SUCCESS' for o in mine):>13} "
            f"{sum(o.seconds for o in mine) / len(mine):>7.1f}"
        )
    return "\n".join(lines)


async def main(kills: int, points: list[str]) -> list[Outcome]:
    from autoloader.stack.postgres import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="crash-matrix-") as tmp:
        workdir = Path(tmp)
        postgres = EmbeddedPostgres(workdir / "pg")
        stack = await start_stack(postgres.start(), workdir / "home")
        standby = Standby(stack, workdir)
        outcomes: list[Outcome] = []
        try:
            for point in points:
                for _ in range(kills):
                    outcomes.append(await crash_once(stack, standby, point, workdir))
                    print(outcomes[-1], flush=True)
        finally:
            standby.stop()
            await stack.stop()
            postgres.stop()
    print(print_table(outcomes))
    return outcomes


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="kills per failpoint")
    parser.add_argument("--points", default=",".join(POINTS), help="comma-separated failpoints")
    args = parser.parse_args()
    service_logging.configure("crash-matrix", "WARNING")
    asyncio.run(main(args.kills, args.points.split(",")))


if __name__ == "__main__":
    cli()
