"""Case g: case a on a Spark standalone cluster. A master and one worker run on this machine; the executor
service is the driver (client mode), its tasks run in the worker's executor JVM, which fetched the jars from
the driver. Autoloader and the bare Spark job share that SparkSession, as in case a.

    python -m bench.cluster_throughput --gigabytes 1
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from autoloader.stack.spark_cluster import StandaloneCluster
from bench import throughput
from bench.throughput import Throughput
from services.shared import logging as service_logging

RATIO_GOAL = 1.10  # case a's goal
WORKER_MEMORY = "2g"
RESULT_PREFIX = "case-g-result "
REPO = Path(__file__).resolve().parents[1]


def measure_on_a_new_cluster(gigabytes: float) -> list[Throughput]:
    with tempfile.TemporaryDirectory(prefix="bench-g-") as directory:
        workdir = Path(directory)
        with StandaloneCluster(workdir / "cluster", cores=os.cpu_count() or 2, memory=WORKER_MEMORY) as cluster:
            return asyncio.run(throughput.measure(gigabytes, workdir, cluster.master_url))


def measure_in_a_fresh_process(gigabytes: float) -> list[Throughput]:
    """Run the case in a new interpreter: a process holds one SparkContext for good, and an earlier case's
    (local[*]) would be handed back instead of a session on the cluster."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.cluster_throughput", "--gigabytes", str(gigabytes), "--json"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        check=True,
        text=True,
    ).stdout
    lines = [line for line in output.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"case g printed no result:\n{output[-2000:]}")
    return [Throughput(**fields) for fields in json.loads(lines[-1].removeprefix(RESULT_PREFIX))]


def case_g(small: bool) -> list[str]:
    results = measure_in_a_fresh_process(0.05 if small else 1.0)
    return [
        "## g. Throughput on a standalone cluster",
        "",
        f"Case a on a Spark standalone cluster on this machine (a master and one worker with {os.cpu_count() or 2}"
        f" cores and {WORKER_MEMORY} for executors; the executor service is the driver, the tasks run in the"
        " worker's executor JVM); both contenders share that SparkSession, best of two each."
        f" Goal: ratio ≤ {RATIO_GOAL:.2f}.",
        "",
        *throughput.table_lines(results, RATIO_GOAL),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line (for case_g)")
    arguments = parser.parse_args()
    service_logging.configure("bench", "WARNING")
    results = measure_on_a_new_cluster(arguments.gigabytes)
    if arguments.json:
        print(RESULT_PREFIX + json.dumps([dataclasses.asdict(r) for r in results]), flush=True)
    else:
        for result in results:
            print(result, f"ratio={result.ratio:.3f}")


if __name__ == "__main__":
    main()
