"""Benchmark case b (Autoloader vs Structured Streaming availableNow) at a tiny size: both contenders must load
exactly the rows of the files, on the initial and on the incremental step, so the comparison stays honest."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import streaming
from tests.support.fresh_process import call_in_fresh_interpreter

pytestmark = pytest.mark.integration

FILES, NEW_FILES, ROWS_PER_FILE = 20, 2, 50


def test_both_contenders_load_exactly_the_new_files_on_each_step(tmp_path: Path) -> None:
    result = call_in_fresh_interpreter(
        "bench.streaming", "measure", FILES, ROWS_PER_FILE, tmp_path, new_files=NEW_FILES, rounds=1, warm_up=False
    )

    initial, incremental = result.steps
    assert (initial.files, initial.rows) == (FILES, FILES * ROWS_PER_FILE)
    assert (incremental.files, incremental.rows) == (NEW_FILES, NEW_FILES * ROWS_PER_FILE)
    # (rows, distinct ids) in each table: a lost or twice-loaded file changes one of them.
    for step, total in ((initial, FILES * ROWS_PER_FILE), (incremental, (FILES + NEW_FILES) * ROWS_PER_FILE)):
        assert step.autoloader_table == (total, total), step
        assert step.streaming_table == (total, total), step
        assert step.autoloader_seconds > 0 and step.streaming_seconds > 0
    # The stream read the new files in its own trigger(s) after the restart, not nothing.
    assert incremental.streaming_profile["batches"] >= 1
    lines = streaming.report(result)
    assert lines[0] == "## b. vs Spark Structured Streaming (availableNow)"
    assert any(line.startswith("| incremental | 2 | 100 |") for line in lines)
