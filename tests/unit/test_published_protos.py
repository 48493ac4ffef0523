"""The API's .proto files ship inside the package, and `buf breaking` refuses a change that breaks the last
release's API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from autoloader.client import proto_include_paths, proto_path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = sorted(p.relative_to(ROOT / "protos") for p in (ROOT / "protos").rglob("*.proto"))
BUF = ROOT / "node_modules" / ".bin" / "buf"


def test_every_proto_is_found_through_the_installed_package() -> None:
    assert PROTOS, "no protos in the repository"
    shipped = resources.files("autoloader") / "protos"
    for relative in PROTOS:
        assert shipped.joinpath(*relative.parts).read_bytes() == (ROOT / "protos" / relative).read_bytes()
    assert sorted(p.relative_to(proto_path()) for p in proto_path().rglob("*.proto")) == PROTOS
    assert (proto_include_paths()[1] / "google" / "api" / "annotations.proto").is_file()


def test_a_built_wheel_holds_every_proto(tmp_path: Path) -> None:
    # Built from a copy holding what the build needs, so this tree and its generated files stay untouched.
    source = tmp_path / "src"
    for name in ("pyproject.toml", "setup.py", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "scripts", source / "scripts")
    shutil.copytree(ROOT / "protos", source / "protos")
    shutil.copytree(ROOT / "autoloader" / "client", source / "autoloader" / "client")
    shutil.copy(ROOT / "autoloader" / "__init__.py", source / "autoloader" / "__init__.py")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("autoloader-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"autoloader/protos/{p.as_posix()}" for p in PROTOS} <= names
    assert {"autoloader/client/py.typed", "autoloader/control/v1/control_pb2.py"} <= names


def _workspace(tmp_path: Path) -> Path:
    """A copy of what scripts/buf_breaking.sh reads, to edit freely."""
    workspace = tmp_path / "repo"
    shutil.copytree(ROOT / "protos", workspace / "protos")
    (workspace / "scripts").mkdir()
    for script in ("buf_breaking.sh", "buf_setup.sh"):
        shutil.copy(ROOT / "scripts" / script, workspace / "scripts" / script)
    shutil.copy(ROOT / "buf.yaml", workspace / "buf.yaml")
    (workspace / "node_modules").symlink_to(ROOT / "node_modules")
    return workspace


def _buf_breaking(workspace: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "scripts/buf_breaking.sh"], cwd=workspace, env=env, capture_output=True, text=True, timeout=120
    )


def test_buf_breaking_passes_today_and_fails_on_a_removed_field(tmp_path: Path) -> None:
    if not BUF.exists():
        pytest.fail("buf is not installed: run `make install`")
    workspace = _workspace(tmp_path)
    unchanged = _buf_breaking(workspace)
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr

    tracker = workspace / "protos" / "autoloader" / "tracker" / "v1" / "tracker.proto"
    text = tracker.read_text()
    assert "  string batch_key = 13;\n" in text
    tracker.write_text(text.replace("  string batch_key = 13;\n", "", 1))
    broken = _buf_breaking(workspace)
    assert broken.returncode != 0
    assert 'field "13" with name "batch_key" on message "Run" was deleted' in broken.stdout
