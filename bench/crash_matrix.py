"""Crash-point matrix: kill the executor at each failpoint, let a fresh executor take the run over, and check
that the run's rows reached the table exactly once — for write_mode "append" and for write_mode "merge".

    python -m bench.crash_matrix --kills 20                     # every failpoint 20 times, both write modes
    python -m bench.crash_matrix --kills 3 --write-mode merge   # merge only (also: append, both)
    python -m bench.crash_matrix --kills 1 --points after_publish,inside_write

--write-mode append|merge|both (default both) picks the destination's write_mode; --kills counts per failpoint
and per mode. The exit status is 1 when any kill missed its failpoint, any run did not end SUCCESS, any file
was not recorded PROCESSED once, or any row was duplicated, lost or wrong.

Each kill: a run over a few CSV files; an executor started with AUTOLOADER_FAILPOINTS=<point> claims it and
dies by SIGKILL at that point; a standby executor (kept frozen with SIGSTOP so it cannot claim first) is
resumed, takes the run over when the lease expires, and finishes it.

append: every row names its file (column `src`) and has a unique `id`. Duplicate rows are rows beyond a
  file's count, lost rows are a file's rows missing.
merge: the table (id INT, version INT, src STRING), merge_keys ["id"], merge_order_by "version", already
  holds base rows (written through the standby's SQL, while no run exists, before the crashing executor
  claims anything). The crashing run's files update existing keys with higher versions, insert new keys,
  repeat keys within the batch (across files and within one file) with different versions, and carry stale
  rows (lower version than the table's) that must not win. Expected: every key exactly once, holding its
  highest-version row (version and src). Duplicate rows are rows beyond one per key, lost rows are keys
  missing.

Both modes also report, by the `id` column: duplicate keys (keys with more than one row), lost keys (expected
keys missing) and wrong rows (rows of a key that should not exist, or whose values are not the expected ones),
plus the run's status and its processed-file records.
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
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from autoloader.executor.v1 import executor_pb2, executor_pb2_grpc
from services.executor.failpoints import POINTS
from services.shared import logging as service_logging
from tests.support.executors import executor_address, start_executor, wait_for_log
from tests.support.stack import InProcessStack, start_stack

FILES_PER_RUN = 4
ROWS_PER_FILE = 5
LEASE_SECONDS = 5
WRITE_MODES = ("append", "merge")

# merge: rows already in the table before the crashing run, id -> version (src 'base').
MERGE_BASE: dict[int, int] = {key: 10 for key in range(6)}
# merge: the crashing run's files (one batch), rows as (id, version). Base version is 10.
MERGE_FILES: tuple[tuple[tuple[int, int], ...], ...] = (
    # part-0: updates 0 and 1 (both beaten later in the batch), inserts 100 and 101 (both beaten later),
    # stale 4 (9 < 10)
    ((0, 11), (1, 11), (100, 1), (101, 5), (4, 9)),
    # part-1: 0 wins at 13, updates 2 (beaten later), 100 wins at 3, inserts 102, stale 5 (3 < 10)
    ((0, 13), (2, 11), (100, 3), (102, 1), (5, 3)),
    # part-2: 0 at 12 after 13 was seen elsewhere (loses), 1 wins at 12, 100 and 101 lose, inserts 103
    ((0, 12), (1, 12), (100, 2), (101, 4), (103, 1)),
    # part-3: 2 wins at 15, updates 3, 101 wins at 6, 104 twice in this one file (2 wins), stale 4 again
    ((2, 15), (3, 11), (101, 6), (104, 1), (104, 2), (4, 8)),
)
MERGE_TABLE_DDL = "(id INT, version INT, src STRING)"
MERGE_SOURCE_OPTIONS = {"header": "true", "inferSchema": "true"}

Row = tuple[str, ...]  # a table row's values after its key, as the SQL interface returns them (strings)


@dataclass(frozen=True)
class Outcome:
    failpoint: str
    status: str
    killed: bool
    duplicate_rows: int  # rows beyond the expected ones (append: per file; merge: beyond one per key)
    lost_rows: int  # expected rows missing (append: per file; merge: keys missing)
    records: dict[str, int]  # processed-file records by status
    seconds: float
    write_mode: str = "append"
    duplicate_keys: int = 0  # keys (id) with more than one row
    lost_keys: int = 0  # expected keys with no row
    wrong_rows: int = 0  # rows of an unexpected key, or not holding the expected values (e.g. a stale version)

    @property
    def exactly_once(self) -> bool:
        return not (self.duplicate_rows or self.lost_rows or self.duplicate_keys or self.lost_keys or self.wrong_rows)


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


def append_expected_rows() -> dict[int, Row]:
    """The rows `write_source` writes, by id: (src,)."""
    return {n * 100 + i: (f"part-{n}.csv",) for n in range(FILES_PER_RUN) for i in range(ROWS_PER_FILE)}


def write_merge_source(directory: Path) -> dict[int, Row]:
    """The merge case's CSV files (id,version,src); returns the table expected after the run, by id:
    (version, src) of each key's highest version among the base rows and the batch."""
    assert len(MERGE_FILES) == FILES_PER_RUN
    directory.mkdir(parents=True)
    candidates: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for key, version in MERGE_BASE.items():
        candidates[key].append((version, "base"))
    for n, rows in enumerate(MERGE_FILES):
        name = f"part-{n}.csv"
        (directory / name).write_text("id,version,src\n" + "".join(f"{k},{v},{name}\n" for k, v in rows))
        for key, version in rows:
            candidates[key].append((version, name))
    expected: dict[int, Row] = {}
    for key, seen in candidates.items():
        best = max(version for version, _ in seen)
        winners = [(version, src) for version, src in seen if version == best]
        if len(winners) != 1:  # a tie would leave the expected row undefined
            raise ValueError(f"key {key}: {len(winners)} rows share the highest version {best}")
        expected[key] = (str(best), winners[0][1])
    return expected


def compare(loaded: list[list[str]], expected: dict[int, Row]) -> tuple[int, int, int]:
    """(duplicate keys, lost keys, wrong rows) of the table's rows [id, *values] against the expected rows."""
    by_key: dict[int, list[Row]] = defaultdict(list)
    for key, *values in loaded:
        by_key[int(key)].append(tuple(values))
    duplicate_keys = sum(len(rows) > 1 for rows in by_key.values())
    lost_keys = sum(key not in by_key for key in expected)
    wrong_rows = sum(row != expected.get(key) for key, rows in by_key.items() for row in rows)
    return duplicate_keys, lost_keys, wrong_rows


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
                executor_pb2.ExecuteSqlRequest(statement=statement, max_rows=10_000),
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


async def seed_merge_table(standby: Standby, table: str) -> None:
    """Create the merge case's table holding MERGE_BASE, through the standby's SQL.

    Called before the run exists, so the standby, awake meanwhile, has nothing to claim."""
    values = ", ".join(f"({key}, {version}, 'base')" for key, version in MERGE_BASE.items())
    async with standby.awake():
        await standby.sql(f"CREATE NAMESPACE IF NOT EXISTS {table.rsplit('.', 1)[0]}")
        await standby.sql(f"CREATE TABLE {table} {MERGE_TABLE_DDL} USING iceberg TBLPROPERTIES ('format-version'='2')")
        await standby.sql(f"INSERT INTO {table} VALUES {values}")
        seeded = await standby.sql(f"SELECT id, version, src FROM {table}")
    if sorted(seeded) != sorted([str(k), str(v), "base"] for k, v in MERGE_BASE.items()):
        raise RuntimeError(f"seeding {table} left {seeded}")


async def crash_once(
    stack: InProcessStack, standby: Standby, failpoint: str, workdir: Path, write_mode: str = "append"
) -> Outcome:
    if write_mode not in WRITE_MODES:
        raise ValueError(f"write_mode {write_mode!r}: use one of {', '.join(WRITE_MODES)}")
    case = workdir / f"{write_mode}-{failpoint}-{uuid.uuid4().hex[:6]}"
    table = f"crash.{write_mode}_{failpoint}_{uuid.uuid4().hex[:6]}"
    destination: dict[str, Any] = {"table": table}
    expected_rows: dict[int, Row]
    per_file: dict[str, int] = {}  # append: rows per source file
    if write_mode == "merge":
        expected_rows = write_merge_source(case / "source")
        options, columns = MERGE_SOURCE_OPTIONS, "id, version, src"
        destination |= {"write_mode": "merge", "merge_keys": ["id"], "merge_order_by": "version"}
    else:
        per_file = write_source(case / "source")
        expected_rows = append_expected_rows()
        options, columns = {"header": "true"}, "id, src"
    crasher = start_executor(
        stack,
        case / "executor",
        str(workdir / "warehouse"),
        {"AUTOLOADER_FAILPOINTS": failpoint, "AUTOLOADER_LEASE_SECONDS": str(LEASE_SECONDS)},
    )
    try:
        if write_mode == "merge":
            await seed_merge_table(standby, table)  # while the crasher starts; no run exists yet
        wait_for_log(case / "executor", "spark ready")
        assert process_state(standby.process.pid) == "T", "the standby must be frozen while the crasher claims"
        started = time.monotonic()
        async with stack.http(stack.admin_token) as client:
            ingestion_id = f"crash-{uuid.uuid4().hex[:8]}"
            created = await client.post(
                "/api/v1/ingestions",
                json={
                    "ingestion_id": ingestion_id,
                    "name": f"crash at {failpoint} ({write_mode})",
                    "source": {"uri": (case / "source").as_uri() + "/", "format": "csv", "options": options},
                    "destination": destination,
                },
            )
            assert created.status_code == 201, created.text
            run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
            killed = await asyncio.to_thread(_wait_for_exit, crasher, 180)
            standby.resume()
            try:
                run = await stack.wait_for_run(run_id, timeout=300)
                loaded = await standby.sql(f"SELECT {columns} FROM {table}")
            finally:
                standby.freeze()
            files = (await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files?page_size=1000")).json()
        duplicate_keys, lost_keys, wrong_rows = compare(loaded, expected_rows)
        if write_mode == "merge":
            rows_per_key = Counter(int(row[0]) for row in loaded)
            duplicates = sum(n - 1 for key, n in rows_per_key.items() if key in expected_rows)
            lost = lost_keys
        else:
            rows_per_file = Counter(row[-1] for row in loaded)
            duplicates = sum(max(0, rows_per_file[name] - rows) for name, rows in per_file.items())
            lost = sum(max(0, rows - rows_per_file[name]) for name, rows in per_file.items())
        records = Counter(str(f["status"]) for f in files["processed_files"])
        return Outcome(
            failpoint,
            run["status"],
            killed,
            duplicates,
            lost,
            dict(records),
            time.monotonic() - started,
            write_mode=write_mode,
            duplicate_keys=duplicate_keys,
            lost_keys=lost_keys,
            wrong_rows=wrong_rows,
        )
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
    headers = ("mode", "failpoint", "kills", "dup rows", "lost rows", "dup keys", "lost keys", "wrong rows")
    lines = [f"{headers[0]:<7} {headers[1]:<20}" + "".join(f" {h:>10}" for h in headers[2:]) + "    SUCCESS  s/kill"]
    for mode in WRITE_MODES:
        for point in POINTS:
            mine = [o for o in outcomes if o.failpoint == point and o.write_mode == mode]
            if not mine:
                continue
            counts = (
                sum(o.killed for o in mine),
                sum(o.duplicate_rows for o in mine),
                sum(o.lost_rows for o in mine),
                sum(o.duplicate_keys for o in mine),
                sum(o.lost_keys for o in mine),
                sum(o.wrong_rows for o in mine),
            )
            lines.append(
                f"{mode:<7} {point:<20}"
                + "".join(f" {n:>10}" for n in counts)
                + f" {sum(o.status == 'SUCCESS' for o in mine):>10} {sum(o.seconds for o in mine) / len(mine):>7.1f}"
            )
    return "\n".join(lines)


async def main(kills: int, points: list[str], write_modes: list[str]) -> list[Outcome]:
    from autoloader.stack.postgres import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="crash-matrix-") as tmp:
        workdir = Path(tmp)
        postgres = EmbeddedPostgres(workdir / "pg")
        stack = await start_stack(postgres.start(), workdir / "home")
        standby = Standby(stack, workdir)
        outcomes: list[Outcome] = []
        try:
            for mode in write_modes:
                for point in points:
                    for _ in range(kills):
                        outcomes.append(await crash_once(stack, standby, point, workdir, mode))
                        print(outcomes[-1], flush=True)
        finally:
            standby.stop()
            await stack.stop()
            postgres.stop()
    print(print_table(outcomes))
    return outcomes


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="kills per failpoint and write mode")
    parser.add_argument("--points", default=",".join(POINTS), help="comma-separated failpoints")
    parser.add_argument(
        "--write-mode", choices=[*WRITE_MODES, "both"], default="both", help="destination write_mode (default both)"
    )
    args = parser.parse_args()
    points = args.points.split(",")
    unknown = [p for p in points if p not in POINTS]
    if unknown:
        parser.error(f"unknown failpoint(s) {', '.join(unknown)}; known: {', '.join(POINTS)}")
    service_logging.configure("crash-matrix", "WARNING")
    modes = list(WRITE_MODES) if args.write_mode == "both" else [args.write_mode]
    started = time.monotonic()
    outcomes = asyncio.run(main(args.kills, points, modes))
    print(f"{len(outcomes)} kills in {time.monotonic() - started:.0f} s")
    records = {"PROCESSED": FILES_PER_RUN}
    if not all(o.killed and o.status == "SUCCESS" and o.exactly_once and o.records == records for o in outcomes):
        raise SystemExit(1)


if __name__ == "__main__":
    cli()
