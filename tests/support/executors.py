"""Executor processes started as a deployment would start them: `python -m services.executor serve`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.support.stack import LOOPBACK_S3, InProcessStack


def start_executor(
    stack: InProcessStack, home: Path, warehouse: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """An executor process pulling runs from the stack's tracker; its log is home/executor.log."""
    home.mkdir(parents=True)
    env = {
        **os.environ,
        "AUTOLOADER_DATABASE_URL": stack.database_url,
        "AUTOLOADER_TRACKER_ADDRESS": stack.tracker.address,
        "AUTOLOADER_TOKEN": stack.executor_token,
        "AUTOLOADER_HOME": str(home),
        "AUTOLOADER_WAREHOUSE": warehouse,
        "AUTOLOADER_GRPC_PORT": "0",
        "AUTOLOADER_PORT_FILE": str(home / "port"),
        "AUTOLOADER_POLL_SECONDS": "0.2",
        "AUTOLOADER_LEASE_SECONDS": "10",
        "AUTOLOADER_ENDPOINT_ALLOWLIST": LOOPBACK_S3,  # test S3 servers listen on loopback
        **(extra_env or {}),
    }
    log = (home / "executor.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "services.executor", "serve"], env=env, stdout=log, stderr=log)


def executor_address(home: Path, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        port_file = home / "port"
        if port_file.exists():
            return f"127.0.0.1:{port_file.read_text()}"
        time.sleep(0.1)
    raise AssertionError(f"executor in {home} did not start: {(home / 'executor.log').read_text()[-2000:]}")


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(30)


def wait_for_log(home: Path, text: str, timeout: float = 120) -> None:
    """Wait until the executor in `home` logged `text` (e.g. "spark ready")."""
    log = home / "executor.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise AssertionError(f"executor in {home} never logged {text!r}: {log.read_text(errors='replace')[-2000:]}")


def wait_until_stopped(process: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Wait until the process froze itself with SIGSTOP (state T in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the executor exited instead of freezing"
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "T":
            return
        time.sleep(0.05)
    raise AssertionError("the executor never reached its failpoint")


def freezing_executor(stack: InProcessStack, workdir: Path, failpoint: str, lease: int = 5) -> subprocess.Popen[bytes]:
    home = workdir / f"frozen-{uuid.uuid4().hex[:6]}"
    process = start_executor(
        stack,
        home,
        str(workdir / "warehouse"),
        {"AUTOLOADER_FAILPOINTS": f"{failpoint}=stop", "AUTOLOADER_LEASE_SECONDS": str(lease)},
    )
    wait_for_log(home, "spark ready")
    return process
