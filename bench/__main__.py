"""Run the benchmark cases, print each contender's figures side by side, and write bench/RESULTS.md.

    python -m bench                  # every implemented case at full size
    python -m bench --cases e --small

Cases (see bench/RESULTS.md for what each measures and its goal):
  a  throughput: a run over ~1 GB of CSV, and of the same rows as Parquet, vs a bare Spark job reading the
     same files and appending to Iceberg in the same SparkSession
  b  vs Spark Structured Streaming's file source (availableNow) into Iceberg: an initial load of 2,000 files,
     then an incremental load of 1% new files
  c  10,000 small CSV files (1-10 KB) in one run vs a bare Spark job reading their directory
  d  an empty run through the API with 100,000 files already tracked (incremental listing)
  e  tracker with a million files: register, diff and claim a listing of 1,000,000 keys (1,000 new)
     against 999,000 records; peak memory of the tracker and the database at 100,000 and 1,000,000.
  f  API: latency and throughput of GET /runs/{id} and POST …/run at 50 concurrent clients via the gateway
  g  case a again on a local Spark standalone cluster started by the benchmark
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import (
    api_load,
    cluster_throughput,
    empty_run,
    machine,
    small_files,
    streaming,
    throughput,
    tracker_scale,
)
from services.shared import logging as service_logging
from tests.support.fresh_process import call_in_fresh_interpreter

RESULTS = Path(__file__).parent / "RESULTS.md"
GOAL_SECONDS = 5.0
RATIO_GOAL = 1.10


def case_e(small: bool) -> list[str]:
    sizes = (10_000, 100_000) if small else (100_000, 1_000_000)
    results = []
    for files in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-e-") as directory:
            results.append(asyncio.run(tracker_scale.measure(files, 1_000, Path(directory))))
    lines = [
        "## e. Tracker with a million files",
        "",
        "A listing of N keys (1,000 new) streamed to a tracker holding N - 1,000 records: registering the"
        " listing, then planning the batch (the diff against the records and the claim of the new files)."
        f" Goal: ≤ {GOAL_SECONDS:g} s at 1,000,000, memory flat in N.",
        "",
        "| files | register s | diff + claim s | total s | batch | tracker peak MiB | tracker growth MiB |"
        " database growth MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.files:,} | {r.register_seconds:.2f} | {r.plan_seconds:.2f} | {r.total_seconds:.2f} |"
            f" {r.batch_files:,} | {r.tracker_peak_mib:.0f} | {r.tracker_growth_mib:.0f} |"
            f" {r.database_growth_mib:.0f} |"
        )
    largest = results[-1]
    verdict = "met" if largest.total_seconds <= GOAL_SECONDS else "NOT met"
    lines += ["", f"Goal {verdict}: {largest.total_seconds:.2f} s at {largest.files:,} files.", ""]
    return lines


def case_a(small: bool) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-a-") as directory:
        results = asyncio.run(throughput.measure(0.05 if small else 1.0, Path(directory)))
    return [
        "## a. Throughput vs a bare Spark job",
        "",
        "The same files (40 of them), the same explicit schema, the same SparkSession; Autoloader timed from"
        " `POST …/run` to the run's recorded end as SUCCESS (listing, planning, staging and publishing included),"
        " the bare job from read to append. Best of two each; who goes first alternates."
        f" Goal: ratio ≤ {RATIO_GOAL:.2f}.",
        "",
        *throughput.table_lines(results, RATIO_GOAL),
    ]


CASES = {
    "a": case_a,
    "b": streaming.case_b,
    "c": small_files.case_c,
    "d": empty_run.case_d,
    "e": case_e,
    "f": api_load.case_f,
    "g": cluster_throughput.case_g,
}


def run_case(case: Callable[[bool], list[str]], small: bool) -> list[str]:
    """A case's report lines, measured in a fresh interpreter: a process keeps its first SparkContext (and its
    catalog's database), and each case starts a database and stack of its own."""
    module = "bench.__main__" if case.__module__ == "__main__" else case.__module__
    lines: list[str] = call_in_fresh_interpreter(module, case.__name__, small, timeout=3 * 3600)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case letters")
    parser.add_argument("--small", action="store_true", help="small sizes: a quick check that the cases run")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md alone")
    arguments = parser.parse_args()
    service_logging.configure("bench", "WARNING")
    chosen = [c.strip() for c in arguments.cases.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        raise SystemExit(f"--cases: unknown case(s) {', '.join(unknown)}; implemented: {', '.join(CASES)}")
    facts = machine.describe()
    lines = [
        "# Benchmark results",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python -m bench --cases {','.join(chosen)}`"
        + (" --small" if arguments.small else "")
        + ".",
        "",
        *[f"- {name}: {value}" for name, value in facts.items()],
        "",
    ]
    for case in chosen:
        lines += run_case(CASES[case], arguments.small)
    report = "\n".join(lines)
    print(report)
    if not arguments.no_write:
        RESULTS.write_text(report)


if __name__ == "__main__":
    main()
