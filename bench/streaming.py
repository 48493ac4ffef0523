"""Case b: Autoloader against Spark Structured Streaming's file source run with `trigger(availableNow=True)` into
Iceberg, the way a scheduled streaming job is run, over the same CSV files: an initial load of all files, then an
incremental load after 1% new files land.

Method
- Many small files (2,000 at full size, 5,000 rows / ~240 KB each, ~0.45 GB; 200 files at --small): the file
  count, not the bytes, is where a streaming source's listing and its metadata log cost show. The incremental
  step adds 1% new files (at least one).
- The same SparkSession settings for both: the streaming query runs in `newSession()` of the executor's
  session (same SparkContext, same conf and Iceberg catalog; only the runtime SQL conf is its own, so the
  loader's per-batch `spark.wap.id` can never reach the stream's writes).
- The same explicit schema (DDL) and `header=true` for both, so neither infers.
- Streaming as users run it: Spark 3.5 defaults, no tuning. `maxFilesPerTrigger` is unset (availableNow then
  reads all new files in one micro-batch), `maxFileAge` 7 days, `spark.sql.streaming.fileSource.log.
  compactInterval` 10 (the source's log compacts every 10th batch: not reached in two batches),
  `...fileSource.log.cleanupDelay` 10 min. The Iceberg sink is used, so the file sink's own log plays no part.
  The incremental step starts a NEW query on the SAME checkpoint, as a scheduled job does after a restart.
- Autoloader timed from `POST …/run` to the run's recorded end (listing, tracker planning, staging,
  publishing, and the wait until an idle executor claims the run included); streaming from building the query
  to `awaitTermination()` returning. Each contender creates its table inside its first timed step.
- A warm-up round (both steps on 1% of the files) runs first, so neither contender pays for the JVM's first
  jobs (class loading, JIT). Then two rounds, each on files, tables and a checkpoint of its own, and the
  faster round counts per step and contender (as in case a). Who goes first alternates by step and round.
- After each step both tables are counted: rows and distinct ids must equal the files written so far
  (nothing lost, nothing loaded twice); a mismatch fails the benchmark.
- Each step also records where the time went: the Autoloader run's queued/running split (from its run
  record) and the stream's phase durations from `StreamingQuery.recentProgress`.

    python -m bench.streaming --small
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import throughput
from bench.processes import postgres
from bench.throughput import DDL, ROW_BYTES, spark_of, timed_run
from services.shared import logging as service_logging
from tests.support.stack import InProcessStack, start_stack

CATALOG = "autoloader"  # the executor's Iceberg catalog; the stream names its table with it explicitly
NAMESPACE = "bench"
COUNTRIES = ("DE", "FR", "US", "BR", "JP", "IN", "NG", "AU")
FULL = (2_000, 5_000)  # files, rows per file
SMALL = (200, 500)
ROUNDS = 2  # best of, as in case a
STREAM_PHASES = ("latestOffset", "addBatch", "walCommit", "commitOffsets", "triggerExecution")


@dataclass(frozen=True)
class Step:
    name: str
    files: int  # new files this step reads
    rows: int  # rows this step adds
    autoloader_seconds: float
    streaming_seconds: float
    # (rows, distinct ids) each table holds after the step.
    autoloader_table: tuple[int, int]
    streaming_table: tuple[int, int]
    # Where the time went, for the report: the Autoloader run's phases and the stream's progress durations.
    autoloader_profile: dict[str, float] = field(default_factory=dict)
    streaming_profile: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.autoloader_seconds / self.streaming_seconds


@dataclass(frozen=True)
class Comparison:
    files: int
    rows_per_file: int
    rounds: int
    steps: list[Step]

    @property
    def size_text(self) -> str:
        size = self.files * self.rows_per_file * ROW_BYTES
        return f"{size / 2**30:.2f} GB" if size >= 2**29 else f"{size / 2**20:.0f} MB"


class RowCountMismatch(AssertionError):
    """A contender's table does not hold exactly the rows of the files written so far."""


def write_files(directory: Path, first: int, count: int, rows_per_file: int) -> None:
    """Files part-<first>.csv … part-<first+count-1>.csv; file n holds ids n*rows_per_file … (n+1)*rows_per_file-1.

    Deterministic, and ids are unique across files, so a duplicated file shows up as duplicate ids.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(first, first + count):
        start = n * rows_per_file
        with (directory / f"part-{n:05d}.csv").open("w") as out:
            out.write("id,event_time,user_name,country,amount\n")
            out.write(
                "".join(
                    f"{i},2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z,user-{i % 100_003},"
                    f"{COUNTRIES[i % 8]},{(i % 10_007) / 7:.2f}\n"
                    for i in range(start, start + rows_per_file)
                )
            )


# --- the streaming contender ---------------------------------------------------------------------------------


def stream_available_now(spark: Any, source: Path, checkpoint: Path, table: str) -> tuple[float, dict[str, float]]:
    """One availableNow query from `source` into `table`: (seconds until it ended, summed progress durations)."""
    started = time.perf_counter()
    query = (
        spark.readStream.schema(DDL)
        .option("header", "true")
        .csv(str(source))
        .writeStream.format("iceberg")
        .outputMode("append")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
        .toTable(table)
    )
    query.awaitTermination()
    elapsed = time.perf_counter() - started
    if query.exception() is not None:
        raise RuntimeError(f"streaming query failed: {query.exception()}")
    # Spark's own phase names, summed over the query's triggers: latestOffset lists the source, addBatch reads
    # and writes, walCommit/commitOffsets write the checkpoint's logs, triggerExecution is all of a trigger.
    profile: dict[str, float] = {"batches": float(len(query.recentProgress))}
    for progress in query.recentProgress:
        for phase, millis in progress.get("durationMs", {}).items():
            if phase in STREAM_PHASES:
                profile[phase] = profile.get(phase, 0.0) + millis / 1000
    return elapsed, profile


# --- the Autoloader contender --------------------------------------------------------------------------------


async def last_run_profile(stack: InProcessStack, ingestion_id: str) -> dict[str, float]:
    """The newest run's phases from its record: queued until an executor claimed it (the executor polls every
    0.2 s in the benchmark stack, 1 s by default), then running (claim to end)."""
    async with stack.http(stack.admin_token) as client:
        response = await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")
        assert response.status_code == 200, response.text
    runs = response.json()["runs"]
    run = max(runs, key=lambda r: r["create_time"])

    def at(name: str) -> datetime:
        return datetime.fromisoformat(run[name].replace("Z", "+00:00"))

    return {
        "queued": (at("start_time") - at("create_time")).total_seconds(),
        "running": (at("end_time") - at("start_time")).total_seconds(),
    }


async def autoloader_run(stack: InProcessStack, ingestion_id: str) -> tuple[float, int, dict[str, float]]:
    elapsed, rows = await timed_run(stack, ingestion_id)
    profile = await last_run_profile(stack, ingestion_id)
    # The rest is the client's side: the POST through the gateway until the run was created.
    profile["client"] = elapsed - profile["queued"] - profile["running"]
    return elapsed, rows, profile


# --- checks --------------------------------------------------------------------------------------------------


def count_rows(spark: Any, table: str, expected: int) -> tuple[int, int]:
    """(rows, distinct ids) of the table; both must equal `expected`: nothing lost, nothing loaded twice."""
    rows, distinct = spark.sql(f"SELECT count(*), count(DISTINCT id) FROM {table}").collect()[0]
    if rows != expected or distinct != expected:
        raise RowCountMismatch(f"{table}: {rows} rows, {distinct} distinct ids; expected {expected}")
    return int(rows), int(distinct)


# --- the measurement -----------------------------------------------------------------------------------------


async def one_round(
    stack: InProcessStack,
    spark: Any,
    directory: Path,
    name: str,
    sizes: tuple[int, int, int],
    autoloader_first: bool,
) -> list[Step]:
    """Both contenders over files of the round's own: the initial load, then the new files; rows checked.

    `sizes` = (files, new files, rows per file). Who goes first alternates from step to step (and from round
    to round), so neither contender always reads right after the other one warmed the JIT and page cache.
    """
    files, new_files, rows_per_file = sizes
    source = directory / "csv"
    await asyncio.to_thread(write_files, source, 0, files, rows_per_file)
    table = name.replace("-", "_")  # ingestion ids take hyphens, table names underscores
    autoloader_table = f"{CATALOG}.{NAMESPACE}.{table}_autoloader"
    streaming_table = f"{CATALOG}.{NAMESPACE}.{table}_spark"
    checkpoint = directory / "checkpoint"  # outside the source directory, which both contenders list
    await throughput.create_ingestion(stack, name, source, "csv", autoloader_table.split(".", 1)[1])
    steps = []
    for index, (step, step_files, total_files) in enumerate(
        (("initial", files, files), ("incremental", new_files, files + new_files))
    ):
        if index:
            await asyncio.to_thread(write_files, source, files, new_files, rows_per_file)
        autoloader_now = autoloader_first == (index % 2 == 0)
        if autoloader_now:
            al_seconds, al_rows, al_profile = await autoloader_run(stack, name)
        ss_seconds, ss_profile = await asyncio.to_thread(
            stream_available_now, spark, source, checkpoint, streaming_table
        )
        if not autoloader_now:
            al_seconds, al_rows, al_profile = await autoloader_run(stack, name)
        step_rows, total_rows = step_files * rows_per_file, total_files * rows_per_file
        if al_rows != step_rows:
            raise RowCountMismatch(f"Autoloader's {step} run wrote {al_rows} rows; expected {step_rows}")
        al_table = await asyncio.to_thread(count_rows, spark, autoloader_table, total_rows)
        ss_table = await asyncio.to_thread(count_rows, spark, streaming_table, total_rows)
        steps.append(
            Step(step, step_files, step_rows, al_seconds, ss_seconds, al_table, ss_table, al_profile, ss_profile)
        )
    return steps


def best_of(rounds: list[list[Step]]) -> list[Step]:
    """Per step, each contender's fastest round (with that round's profile)."""
    steps = []
    for attempts in zip(*rounds, strict=True):
        al = min(attempts, key=lambda s: s.autoloader_seconds)
        ss = min(attempts, key=lambda s: s.streaming_seconds)
        steps.append(
            dataclasses.replace(al, streaming_seconds=ss.streaming_seconds, streaming_profile=ss.streaming_profile)
        )
    return steps


async def measure(
    files: int,
    rows_per_file: int,
    workdir: Path,
    *,
    new_files: int | None = None,
    rounds: int = 1,
    warm_up: bool = True,
) -> Comparison:
    """Initial load of `files` files, then an incremental load of `new_files` more (1% by default); the best of
    `rounds` rounds, each on files, tables and a checkpoint of its own, after a warm-up round at 1% size."""
    new_files = new_files if new_files is not None else max(1, files // 100)
    (workdir / "home").mkdir(parents=True)
    with postgres(workdir) as url:
        stack = await start_stack(url, workdir / "home", with_worker=True, lease_seconds=60)
        try:
            spark = (await spark_of(stack)).newSession()
            await asyncio.to_thread(spark.sql, f"CREATE NAMESPACE IF NOT EXISTS {CATALOG}.{NAMESPACE}")
            # The same two steps on a few files first: the JVM's first jobs (class loading, JIT) count for no one.
            if warm_up:
                sizes = (max(2, files // 100), 1, rows_per_file)
                await one_round(stack, spark, workdir / "warm-up", "warm-up", sizes, True)
            measured = [
                await one_round(
                    stack, spark, workdir / f"round-{n}", f"round-{n}", (files, new_files, rows_per_file), n % 2 == 0
                )
                for n in range(rounds)
            ]
        finally:
            await stack.stop()
    return Comparison(files, rows_per_file, rounds, best_of(measured))


# --- the report ----------------------------------------------------------------------------------------------


def _profile_text(profile: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.2f} s" for name, seconds in profile.items() if name != "batches")


def report(result: Comparison) -> list[str]:
    lines = [
        "## b. vs Spark Structured Streaming (availableNow)",
        "",
        f"{result.files:,} CSV files ({result.rows_per_file:,} rows each, about {result.size_text}) loaded by an"
        " Autoloader ingestion and by a Structured Streaming file-source query (`trigger(availableNow=True)`,"
        " Spark 3.5 defaults) into Iceberg, in the same SparkSession with the same explicit schema; then 1% new"
        " files, loaded by a second run and by a new query on the same checkpoint. Autoloader timed from"
        " `POST …/run` to the run's recorded end as SUCCESS, streaming from start to termination; both tables"
        " counted after each step."
        f" After a warm-up round, best of {result.rounds} rounds. Goal: ratio < 1 on both steps.",
        "",
        "| step | files | rows | Autoloader s | streaming s | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for s in result.steps:
        lines.append(
            f"| {s.name} | {s.files:,} | {s.rows:,} | {s.autoloader_seconds:.1f} | {s.streaming_seconds:.1f} |"
            f" {s.ratio:.2f} |"
        )
    lines.append("")
    for s in result.steps:
        batches = int(s.streaming_profile.get("batches", 0))
        lines.append(
            f"- {s.name}: Autoloader {_profile_text(s.autoloader_profile)}; streaming"
            f" ({batches} micro-batch{'' if batches == 1 else 'es'}) {_profile_text(s.streaming_profile)}."
        )
    met = all(s.ratio < 1 for s in result.steps)
    ratios = ", ".join(f"{s.ratio:.2f}" for s in result.steps)
    return [*lines, "", f"Goal {'met' if met else 'NOT met'}: ratios {ratios}; row counts exact on both.", ""]


def case_b(small: bool) -> list[str]:
    files, rows_per_file = SMALL if small else FULL
    with tempfile.TemporaryDirectory(prefix="bench-b-") as directory:
        return report(asyncio.run(measure(files, rows_per_file, Path(directory), rounds=ROUNDS)))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.streaming", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help=f"{SMALL[0]} files of {SMALL[1]} rows")
    parser.add_argument("--files", type=int, help=f"files of the initial load (default {FULL[0]})")
    parser.add_argument("--rows-per-file", type=int, help=f"default {FULL[1]}")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="measured rounds; the best counts")
    arguments = parser.parse_args()
    service_logging.configure("bench", "WARNING")
    files, rows_per_file = SMALL if arguments.small else FULL
    files = arguments.files or files
    rows_per_file = arguments.rows_per_file or rows_per_file
    with tempfile.TemporaryDirectory(prefix="bench-b-") as directory:
        result = asyncio.run(measure(files, rows_per_file, Path(directory), rounds=arguments.rounds))
    print("\n".join(report(result)))


if __name__ == "__main__":
    main()
