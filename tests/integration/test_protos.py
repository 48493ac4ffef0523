"""The protos lint clean and the installed stubs are exactly what the protos generate."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.generate_stubs import generate

ROOT = Path(__file__).resolve().parents[2]


def test_buf_lint_passes() -> None:
    if shutil.which("npm") is None and not (ROOT / "node_modules/.bin/buf").exists():
        pytest.fail("buf is not installed: run `make install`")
    result = subprocess.run([str(ROOT / "scripts/buf_lint.sh")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_installed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    (tmp_path / "autoloader").mkdir()
    for fresh in generate(tmp_path):
        for suffix in ("_pb2.py", "_pb2_grpc.py", "_pb2.pyi"):
            candidate = fresh.with_name(fresh.name.replace("_pb2.py", suffix))
            installed = ROOT / candidate.relative_to(tmp_path)
            assert installed.read_text() == candidate.read_text(), f"{installed} is stale: run `make stubs`"
