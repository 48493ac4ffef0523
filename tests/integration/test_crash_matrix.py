"""Kill the executor (SIGKILL) at every failpoint; a fresh executor takes the run over and finishes it.

For write_mode "append" and "merge" (updates, inserts, keys repeated within the batch, stale rows): no
duplicate row or key, no lost row or key, no wrong row (merge: each key holds its highest-version row), every
file recorded PROCESSED once, the run SUCCESS. `python -m bench.crash_matrix --kills 20` repeats this many
times and prints the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.crash_matrix import FILES_PER_RUN, WRITE_MODES, Standby, crash_once
from services.executor.failpoints import POINTS
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("failpoint", POINTS)
@pytest.mark.parametrize("write_mode", WRITE_MODES)
async def test_a_run_killed_at_any_point_finishes_exactly_once(
    stack: InProcessStack, standby: Standby, workdir: Path, write_mode: str, failpoint: str
) -> None:
    outcome = await crash_once(stack, standby, failpoint, workdir, write_mode)
    assert outcome.write_mode == write_mode
    assert outcome.killed, f"the executor did not die at {failpoint}"
    assert outcome.status == "SUCCESS", outcome
    assert (outcome.duplicate_rows, outcome.lost_rows) == (0, 0), outcome
    assert (outcome.duplicate_keys, outcome.lost_keys, outcome.wrong_rows) == (0, 0, 0), outcome
    assert outcome.records == {"PROCESSED": FILES_PER_RUN}, outcome
