"""Benchmark case d (an empty run with many files tracked) at a tiny size, so the benchmark keeps working."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import empty_run
from tests.support.fresh_process import call_in_fresh_interpreter

pytestmark = pytest.mark.integration


def test_every_empty_run_ends_with_no_file_and_positive_figures(tmp_path: Path) -> None:
    (result,) = call_in_fresh_interpreter(
        "bench.empty_run", "measure", 30, tmp_path, runs=3, listing="incremental", loaded_by_run=10, layouts=("nested",)
    )
    assert result.first_run_seconds > 0
    assert len(result.runs) == 3
    assert result.spark_jobs == 0
    for run in result.runs:
        assert (run.status, run.files_processed) == ("SUCCESS", 0), run
        assert run.total_ms > 0
        assert all(run.phases_ms[phase] >= 0 for phase in empty_run.PHASES), run.phases_ms
        assert run.phases_ms["queued→claimed"] > 0 and run.phases_ms["finish"] > 0
    assert result.files == 30
    lines = empty_run.report([result], "incremental", 10)
    assert lines[0] == "## d. An empty run with 100,000 files tracked"
    assert lines[-2].startswith(("Goal met: p50", "Goal NOT met: p50"))
