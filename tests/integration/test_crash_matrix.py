"""Kill the executor (SIGKILL) at every failpoint; a fresh executor takes the run over and finishes it.

No duplicate row, no lost row, every file recorded PROCESSED once, nothing left CLAIMED or RUNNING.
`python -m bench.crash_matrix --kills 20` repeats this many times and prints the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.crash_matrix import FILES_PER_RUN, Standby, crash_once
from services.executor.failpoints import POINTS
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("failpoint", POINTS)
async def test_a_run_killed_at_any_point_finishes_exactly_once(
    stack: InProcessStack, standby: Standby, workdir: Path, failpoint: str
) -> None:
    outcome = await crash_once(stack, standby, failpoint, workdir)
    assert outcome.killed, f"the executor did not die at {failpoint}"
    assert outcome.status == "SUCCESS", outcome
    assert (outcome.duplicate_rows, outcome.lost_rows) == (0, 0), outcome
    assert outcome.records == {"PROCESSED": FILES_PER_RUN}, outcome
