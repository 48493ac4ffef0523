"""Case a: a run over ~1 GB of CSV (and the same rows as Parquet) against a bare Spark job that reads the same
files and appends them to an Iceberg table, in the same SparkSession (same settings, same catalog).

Both contenders get the same explicit schema (the Autoloader ingestion as `schema.ddl`), so neither infers.
Each is timed twice, alternating, and the faster time counts: the ratio is Autoloader / bare Spark.

    python -m bench.throughput --gigabytes 1
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.processes import postgres
from services.shared import logging as service_logging
from tests.support.stack import InProcessStack, start_stack

DDL = "id BIGINT, event_time STRING, user_name STRING, country STRING, amount DOUBLE"
ROW_BYTES = 48  # about, for sizing the data
FILES = 40


@dataclass(frozen=True)
class Throughput:
    file_format: str
    gigabytes: float  # of the files read
    rows: int
    autoloader_seconds: float
    spark_seconds: float

    @property
    def ratio(self) -> float:
        return self.autoloader_seconds / self.spark_seconds


def write_csv(directory: Path, rows: int) -> None:
    """FILES CSV files with `rows` rows in all; deterministic content."""
    directory.mkdir(parents=True, exist_ok=True)
    per_file = rows // FILES
    countries = ("DE", "FR", "US", "BR", "JP", "IN", "NG", "AU")
    for n in range(FILES):
        with (directory / f"part-{n:03d}.csv").open("w") as out:
            out.write("id,event_time,user_name,country,amount\n")
            start = n * per_file
            for block in range(start, start + per_file, 50_000):
                out.write(
                    "".join(
                        f"{i},2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z,user-{i % 100_003},"
                        f"{countries[i % 8]},{(i % 10_007) / 7:.2f}\n"
                        for i in range(block, min(block + 50_000, start + per_file))
                    )
                )


async def spark_of(stack: InProcessStack) -> Any:
    loader = await stack.executor.background["worker"].loader()
    return loader.spark


async def timed_run(stack: InProcessStack, ingestion_id: str) -> tuple[float, int]:
    """Seconds from POST …/run until the run's recorded end_time (same machine, same clock), and its rows.

    The end comes from the run itself, so the client can poll rarely: polling every few milliseconds would
    take CPU from the run on a small machine, and polling rarely would add up to a poll interval."""
    async with stack.http(stack.admin_token) as client:
        started = time.time()
        response = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
        assert response.status_code == 202, response.text
        run = await stack.wait_for_run(response.json()["run_id"], timeout=3600, poll_seconds=0.25)
    assert run["status"] == "SUCCESS", run
    ended = datetime.fromisoformat(run["end_time"].replace("Z", "+00:00")).timestamp()
    return ended - started, int(run["rows_written"])


def bare_spark(spark: Any, file_format: str, source: Path, table: str) -> float:
    """The hand-written job: read the files with the schema, append to an Iceberg table."""
    spark.sql(f"CREATE TABLE IF NOT EXISTS {table} ({DDL}) USING iceberg")
    started = time.perf_counter()
    reader = spark.read.schema(DDL)
    frame = reader.option("header", "true").csv(str(source)) if file_format == "csv" else reader.parquet(str(source))
    frame.writeTo(table).append()
    return time.perf_counter() - started


async def create_ingestion(
    stack: InProcessStack, ingestion_id: str, source: Path, file_format: str, table: str
) -> None:
    """An ingestion of the files under `source` into `table`, with the benchmark's explicit schema."""
    async with stack.http(stack.admin_token) as client:
        created = await client.post(
            "/api/v1/ingestions",
            json={
                "ingestion_id": ingestion_id,
                "name": ingestion_id,
                "source": {
                    "uri": source.as_uri() + "/",
                    "format": file_format,
                    "options": {"header": "true"} if file_format == "csv" else {},
                },
                "destination": {"table": table},
                "schema": {"ddl": DDL},
            },
        )
        assert created.status_code == 201, created.text


async def measure(gigabytes: float, workdir: Path, spark_master: str = "local[*]") -> list[Throughput]:
    rows = int(gigabytes * 2**30 / ROW_BYTES)
    csv_dir = workdir / "csv"
    await asyncio.to_thread(write_csv, csv_dir, rows)
    (workdir / "home").mkdir()
    results = []
    with postgres(workdir) as url:
        stack = await start_stack(url, workdir / "home", with_worker=True, lease_seconds=60, spark_master=spark_master)
        spark: Any = None
        try:
            spark = await spark_of(stack)
            parquet_dir = workdir / "parquet"
            await asyncio.to_thread(
                lambda: (
                    spark.read.schema(DDL).option("header", "true").csv(str(csv_dir)).write.parquet(str(parquet_dir))
                )
            )
            for file_format, source in (("csv", csv_dir), ("parquet", parquet_dir)):
                autoloader_times, spark_times = [], []
                # Best of two each; who goes first alternates, so neither always runs on a JVM and page cache
                # the other one just warmed.
                for attempt in range(2):
                    ingestion_id = f"throughput-{file_format}-{attempt}"
                    await create_ingestion(
                        stack, ingestion_id, source, file_format, f"bench.al_{file_format}_{attempt}"
                    )
                    bare_table = f"bench.bare_{file_format}_{attempt}"
                    if attempt == 1:
                        spark_times.append(await asyncio.to_thread(bare_spark, spark, file_format, source, bare_table))
                    elapsed, written = await timed_run(stack, ingestion_id)
                    autoloader_times.append(elapsed)
                    if attempt == 0:
                        spark_times.append(await asyncio.to_thread(bare_spark, spark, file_format, source, bare_table))
                results.append(Throughput(file_format, gigabytes, written, min(autoloader_times), min(spark_times)))
        finally:
            await stack.stop()
            if spark is not None and not spark_master.startswith("local"):
                # The stack leaves its SparkSession running; stopping it ends the application before its
                # cluster goes away (else the driver keeps trying to reconnect to a stopped master).
                spark.stop()
    return results


def table_lines(results: list[Throughput], goal: float) -> list[str]:
    """The results as a markdown table, and whether every ratio is within `goal`."""
    lines = [
        "| format | GB | rows | Autoloader s | bare Spark s | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.file_format} | {r.gigabytes:.2f} | {r.rows:,} | {r.autoloader_seconds:.1f} | {r.spark_seconds:.1f} |"
            f" {r.ratio:.2f} |"
        )
    met = all(r.ratio <= goal for r in results)
    return [*lines, "", f"Goal {'met' if met else 'NOT met'}.", ""]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    arguments = parser.parse_args()
    service_logging.configure("bench", "WARNING")
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as directory:
        for result in asyncio.run(measure(arguments.gigabytes, Path(directory))):
            print(result, f"ratio={result.ratio:.3f}")


if __name__ == "__main__":
    main()
