"""Case c: 10,000 small CSV files (1-10 KB each) in one run, against a bare Spark job that reads the same
directory and appends it to an Iceberg table, in the same SparkSession (same settings, same catalog).

Both contenders get the same explicit schema (the Autoloader ingestion as `schema.ddl`), so neither infers.
Each is timed twice, alternating, and the faster time counts: the ratio is Autoloader / bare Spark.

    python -m bench.small_files            # 10,000 files
    python -m bench.small_files --small    # 1,000 files
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import throughput
from bench.processes import postgres
from bench.throughput import bare_spark, spark_of, timed_run
from services.shared import logging as service_logging
from tests.support.stack import start_stack

FILES = 10_000
SMALL_FILES = 1_000
MIN_BYTES = 1024
MAX_BYTES = 10 * 1024
HEADER = "id,event_time,user_name,country,amount\n"
COUNTRIES = ("DE", "FR", "US", "BR", "JP", "IN", "NG", "AU")


@dataclass(frozen=True)
class SmallFilesResult:
    files: int
    megabytes: float  # of the files read
    rows: int
    autoloader_seconds: float
    spark_seconds: float

    @property
    def ratio(self) -> float:
        return self.autoloader_seconds / self.spark_seconds


@dataclass(frozen=True)
class Dataset:
    files: int
    total_bytes: int
    rows: int


def file_size_target(n: int) -> int:
    """The size (bytes) file n is filled up to: spread over 1-10 KB by a multiplicative hash, so neighbouring
    files differ and the same n always gives the same size."""
    span = MAX_BYTES - MIN_BYTES - 64  # a file stops within one row (< 64 bytes) below its target
    return MIN_BYTES + 64 + (n * 2_654_435_761) % (span + 1)


def _row(i: int) -> str:
    return (
        f"{i},2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z,user-{i % 100_003},"
        f"{COUNTRIES[i % 8]},{(i % 10_007) / 7:.2f}\n"
    )


def write_files(directory: Path, files: int) -> Dataset:
    """`files` CSV files with a header, each filled with whole rows up to its target size; ids unique across
    files. Deterministic: the same count always writes the same bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    next_id = total_bytes = 0
    for n in range(files):
        target = file_size_target(n)
        lines, size = [HEADER], len(HEADER)
        while size + len(row := _row(next_id)) <= target:
            lines.append(row)
            size += len(row)
            next_id += 1
        (directory / f"part-{n:05d}.csv").write_text("".join(lines))
        total_bytes += size
    return Dataset(files, total_bytes, next_id)


def table_rows(spark: Any, table: str) -> int:
    return int(spark.table(table).count())


async def measure(small: bool, workdir: Path, *, files: int | None = None, attempts: int = 2) -> SmallFilesResult:
    """Write the files, then time an Autoloader run and the bare job over them `attempts` times, alternating;
    `files` overrides the size `small` picks (tests use a tiny one)."""
    source = workdir / "csv"
    dataset = await asyncio.to_thread(write_files, source, files or (SMALL_FILES if small else FILES))
    (workdir / "home").mkdir()
    autoloader_times, spark_times = [], []
    with postgres(workdir) as url:
        stack = await start_stack(url, workdir / "home", with_worker=True, lease_seconds=60)
        try:
            spark = await spark_of(stack)
            for attempt in range(attempts):
                # A fresh ingestion and table each time: every run loads all the files, as the bare job does.
                ingestion_id, table = f"small-files-{attempt}", f"bench.al_small_{attempt}"
                await throughput.create_ingestion(stack, ingestion_id, source, "csv", table)
                elapsed, written = await timed_run(stack, ingestion_id)
                assert written == dataset.rows, (written, dataset.rows)
                assert await asyncio.to_thread(table_rows, spark, table) == dataset.rows
                autoloader_times.append(elapsed)

                bare_table = f"bench.bare_small_{attempt}"
                spark_times.append(await asyncio.to_thread(bare_spark, spark, "csv", source, bare_table))
                assert await asyncio.to_thread(table_rows, spark, bare_table) == dataset.rows
        finally:
            await stack.stop()
    return SmallFilesResult(
        files=dataset.files,
        megabytes=dataset.total_bytes / 1e6,
        rows=dataset.rows,
        autoloader_seconds=min(autoloader_times),
        spark_seconds=min(spark_times),
    )


def report(result: SmallFilesResult) -> list[str]:
    return [
        "## c. 10,000 small files in one run",
        "",
        f"{result.files:,} CSV files of 1-10 KB each (sizes spread deterministically), the same explicit schema,"
        " the same SparkSession; Autoloader timed from `POST …/run` to the run's recorded end (listing, planning,"
        " staging and publishing included), the bare job"
        ' (`spark.read.schema(…).option("header", "true").csv(<directory>)` → `writeTo(…).append()`, Spark lists'
        " the directory itself) from read to append. Best of two each, alternating.",
        "",
        "| files | MB | rows | Autoloader s | bare Spark s | ratio |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {result.files:,} | {result.megabytes:.1f} | {result.rows:,} | {result.autoloader_seconds:.1f} |"
        f" {result.spark_seconds:.1f} | {result.ratio:.2f} |",
        "",
        "No numeric goal for this case; the aim is close to bare Spark: Autoloader takes"
        f" {result.ratio:.2f}x the bare job's time.",
        "",
    ]


def case_c(small: bool) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-c-") as directory:
        return report(asyncio.run(measure(small, Path(directory))))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.small_files", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help=f"{SMALL_FILES:,} files instead of {FILES:,}")
    arguments = parser.parse_args()
    service_logging.configure("bench", "WARNING")
    print("\n".join(case_c(arguments.small)))


if __name__ == "__main__":
    main()
