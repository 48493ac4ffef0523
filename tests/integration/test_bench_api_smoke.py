"""The API-load benchmark (case f) at a tiny size, so it keeps working as the services and the gateway change."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import api_load

pytestmark = pytest.mark.integration


async def test_the_api_load_case_gets_a_success_for_every_request(tmp_path: Path) -> None:
    results = await api_load.measure(True, tmp_path, clients=5, gets=50, posts=50)

    assert [r.route for r in results] == [api_load.GET_ROUTE, api_load.POST_ROUTE]
    for result, success in zip(results, (200, 202), strict=True):
        assert result.statuses == {success: 50}, result
        assert result.errors == 0 and result.requests == 50 and result.clients == 5
        assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms, result
        assert result.seconds > 0 and result.per_second > 0
        assert result.cpu_seconds["gateway"] > 0 and result.cpu_seconds["tracker"] > 0, result.cpu_seconds


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]

    assert api_load.percentile(values, 0.50) == 50.0
    assert api_load.percentile(values, 0.99) == 99.0
    assert api_load.percentile([7.0], 0.99) == 7.0
