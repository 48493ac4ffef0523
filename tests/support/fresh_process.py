"""Run one function in a new Python interpreter and hand its result back (pickled).

A process keeps its first SparkContext for good, and with it the Iceberg catalog of the database that the first
stack to start Spark used. A benchmark starts its own database and stack; run in the test process, it would
either write into another test's catalog or leave Spark pointing at a database it has stopped. So tests of the
benchmarks run them here, each in a fresh interpreter.

    python -m tests.support.fresh_process CALL_FILE RESULT_FILE
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def call_in_fresh_interpreter(module: str, function: str, *args: Any, timeout: float = 600, **kwargs: Any) -> Any:
    """module.function(*args, **kwargs) in a new interpreter (awaited if it is a coroutine function)."""
    with tempfile.TemporaryDirectory(prefix="fresh-process-") as directory:
        call_file, result_file = Path(directory) / "call.pickle", Path(directory) / "result.pickle"
        call_file.write_bytes(pickle.dumps((module, function, args, kwargs)))
        completed = subprocess.run(
            [sys.executable, "-m", "tests.support.fresh_process", str(call_file), str(result_file)],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if completed.returncode != 0 or not result_file.exists():
            raise AssertionError(
                f"{module}.{function} failed in a fresh interpreter (exit {completed.returncode}):\n"
                f"{completed.stderr[-4000:]}"
            )
        return pickle.loads(result_file.read_bytes())


def _main() -> None:
    call_file, result_file = Path(sys.argv[1]), Path(sys.argv[2])
    module, function, args, kwargs = pickle.loads(call_file.read_bytes())
    target = getattr(importlib.import_module(module), function)
    result = asyncio.run(target(*args, **kwargs)) if inspect.iscoroutinefunction(target) else target(*args, **kwargs)
    result_file.write_bytes(pickle.dumps(result))


if __name__ == "__main__":
    _main()
