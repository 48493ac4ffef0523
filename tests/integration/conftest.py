from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.crash_matrix import Standby
from tests.support.stack import InProcessStack


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("executors")


@pytest.fixture(scope="module")
def standby(stack: InProcessStack, workdir: Path) -> Iterator[Standby]:
    """An executor process of `stack`, kept frozen (SIGSTOP) except while a test resumes it."""
    executor = Standby(stack, workdir)
    try:
        yield executor
    finally:
        executor.stop()
