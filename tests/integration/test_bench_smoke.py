"""The tracker-scale benchmark at a small size, so the benchmark keeps working as the tracker changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import tracker_scale

pytestmark = pytest.mark.integration


async def test_the_tracker_scale_case_plans_exactly_the_new_files(tmp_path: Path) -> None:
    result = await tracker_scale.measure(20_000, 100, tmp_path)
    assert result.batch_files == 100
    assert result.register_seconds > 0 and result.plan_seconds > 0
    assert result.tracker_peak_mib > 0
