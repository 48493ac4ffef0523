"""Benchmark case c (many small files vs a bare Spark job) at a tiny size: both contenders must load exactly
the rows of the files, so the comparison stays honest."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import small_files
from tests.support.fresh_process import call_in_fresh_interpreter

pytestmark = pytest.mark.integration

FILES = 100


def test_both_contenders_load_exactly_the_rows_of_the_small_files(tmp_path: Path) -> None:
    # measure() itself asserts each table holds exactly the rows written; this checks the figures it reports.
    result = call_in_fresh_interpreter("bench.small_files", "measure", True, tmp_path, files=FILES, attempts=1)

    expected = small_files.write_files(tmp_path / "again", FILES)
    assert (result.files, result.rows) == (FILES, expected.rows)
    assert result.megabytes == expected.total_bytes / 1e6
    assert result.autoloader_seconds > 0 and result.spark_seconds > 0
    lines = small_files.report(result)
    assert lines[0] == "## c. 10,000 small files in one run"
    assert any(line.startswith(f"| {FILES} | ") for line in lines)


def test_the_files_are_1_to_10_kb_and_the_same_every_time(tmp_path: Path) -> None:
    first = small_files.write_files(tmp_path / "first", 50)
    second = small_files.write_files(tmp_path / "second", 50)
    assert first == second
    sizes = [p.stat().st_size for p in sorted((tmp_path / "first").iterdir())]
    assert all(1024 < size <= 10 * 1024 for size in sizes)
    assert len(set(sizes)) > 40  # the sizes vary
    for name in ("part-00000.csv", "part-00049.csv"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
