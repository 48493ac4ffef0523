"""`autoloader up` as a user runs it: a real process tree, embedded PostgreSQL, HTTP and gRPC on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from autoloader.stack.postgres import free_port

pytestmark = pytest.mark.e2e
SERVICES = ("control", "tracker", "executor")


class Up:
    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "AUTOLOADER_DATABASE_URL"}
        self.env = {**env, "AUTOLOADER_HOME": str(home), **(extra_env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autoloader", "up", "--http-port", str(self.port)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.state = self._wait_for_state()

    def _wait_for_state(self) -> dict[str, str]:
        deadline = time.monotonic() + 90
        state_file = self.home / "stack.json"
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stdout.read() if self.process.stdout else ""
            if state_file.exists():
                return dict(json.loads(state_file.read_text()))
            time.sleep(0.2)
        raise AssertionError("autoloader up did not start within 90 s")

    @property
    def token(self) -> str:
        return (self.home / "admin-token").read_text().strip()

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", headers={"Authorization": f"Bearer {self.token}"})

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        output, _ = self.process.communicate(timeout=60)
        return output


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "autoloader-home"


def health_status(address: str) -> str:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def port_is_closed(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


def test_up_serves_the_api_stops_cleanly_and_restarts_on_the_same_data(home: Path) -> None:
    first = Up(home)
    try:
        token = first.token
        assert stat.S_IMODE((home / "admin-token").stat().st_mode) == 0o600
        for name in SERVICES:
            assert health_status(first.state[f"{name}_address"]) == "SERVING"
        with first.http() as client:
            listed = client.get("/api/v1/ingestions")
            assert listed.status_code == 200
            assert listed.json() == {"ingestions": [], "next_page_token": ""}
            refused = client.post(
                "/api/v1/ingestions",
                json={
                    "name": "Users",
                    "source": {"uri": "file:///data/users/", "format": "csv"},
                    "destination": {"table": "analytics.dim_users", "write_mode": "overwrite"},
                },
            )
            assert refused.status_code == 400
            assert "overwrite mode is not supported" in refused.json()["message"]
        config = home.parent / "ingestion.json"
        config.write_text(
            json.dumps(
                {
                    "ingestion_id": "users-snapshot-ingestion",
                    "name": "Users",
                    "source": {"uri": "file:///data/users/", "format": "csv"},
                    "destination": {"table": "analytics.dim_users"},
                }
            )
        )
        created = subprocess.run(
            [sys.executable, "-m", "autoloader", "ingestions", "create", "--file", str(config)],
            env=first.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["owner"] == "admin"
    finally:
        output = first.stop()
    assert first.process.returncode == 0, output
    assert token in output  # the first start prints the new admin token once
    assert all(port_is_closed(first.state[f"{n}_address"]) for n in SERVICES)
    assert not (home / "stack.json").exists()

    second = Up(home)
    try:
        assert second.token == token
        with second.http() as client:
            ids = [i["ingestion_id"] for i in client.get("/api/v1/ingestions").json()["ingestions"]]
        assert ids == ["users-snapshot-ingestion"]
    finally:
        output = second.stop()
    assert second.process.returncode == 0
    assert token not in output  # not shown again


def cli(up: Up, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autoloader", *args], env=up.env, capture_output=True, text=True, timeout=300
    )


def count_rows(up: Up, table: str) -> int:
    result = cli(up, "sql", f"SELECT count(*) FROM {table}")
    assert result.returncode == 0, result.stderr
    return int(result.stdout.splitlines()[1])


def test_readme_walkthrough_loads_new_files_once_and_starts_over(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "users"
    source.mkdir()
    (source / "part-1.csv").write_text("id,name\n1,ann\n2,bob\n")
    (source / "part-2.csv").write_text("id,name\n3,cid\n")
    up = Up(home)
    try:
        with up.http() as client:
            created = client.post(
                "/api/v1/ingestions",
                json={
                    "ingestion_id": "users-snapshot-ingestion",
                    "name": "Users snapshot",
                    "source": {"uri": source.as_uri() + "/", "format": "csv", "options": {"header": "true"}},
                    "destination": {"table": "analytics.dim_users", "write_mode": "append"},
                },
            )
            assert created.status_code == 201, created.text
        first = cli(up, "run", "users-snapshot-ingestion", "--wait")
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["rows_written"] == 3
        assert "SUCCESS" in first.stderr  # progress lines
        assert count_rows(up, "analytics.dim_users") == 3

        (source / "part-3.csv").write_text("id,name\n4,dee\n")
        preview = cli(up, "preview", "users-snapshot-ingestion")
        assert preview.returncode == 0, preview.stderr
        assert preview.stdout.startswith("next run: 1 files, 14 bytes"), preview.stdout
        assert preview.stdout.splitlines()[1].endswith(" part-3.csv")
        second = cli(up, "run", "users-snapshot-ingestion", "--wait")
        assert json.loads(second.stdout)["files_processed"] == 1
        assert count_rows(up, "analytics.dim_users") == 4
        assert cli(up, "runs", "users-snapshot-ingestion").stdout.count("SUCCESS") == 2
        assert cli(up, "files", "users-snapshot-ingestion").stdout.count("PROCESSED") == 3
        described = cli(up, "ingestions", "schema", "users-snapshot-ingestion").stdout.splitlines()
        assert described[0] == "users-snapshot-ingestion columns, as the last run left the table:"
        assert [line.split() for line in described[1:3]] == [["id", "string"], ["name", "string"]]

        # Fresh start: the table comes back empty; nothing old is loaded again.
        assert cli(up, "sql", "DROP TABLE analytics.dim_users").returncode == 0
        assert cli(up, "run", "users-snapshot-ingestion", "--wait").returncode == 0
        assert count_rows(up, "analytics.dim_users") == 0

        # Full reprocess: drop and clear, then every file exactly once.
        assert cli(up, "sql", "DROP TABLE analytics.dim_users").returncode == 0
        dry = cli(up, "clear-processed-files", "users-snapshot-ingestion", "--prefix", "part-1", "--dry-run")
        assert dry.stdout.startswith("Would clear 1 processed file records"), dry.stdout + dry.stderr
        cleared = cli(up, "clear-processed-files", "users-snapshot-ingestion")
        assert cleared.stdout.strip() == "Cleared 3 processed file records"
        assert cli(up, "run", "users-snapshot-ingestion", "--wait").returncode == 0
        assert count_rows(up, "analytics.dim_users") == 4
    finally:
        output = up.stop()
    assert up.process.returncode == 0, output


def child_pid(home: Path, module: str) -> int:
    """The pid of the `python -m <module> serve` child of the stack whose home is `home`."""
    for process in psutil.process_iter(["cmdline", "environ"]):
        cmdline, environ = process.info["cmdline"] or [], process.info["environ"] or {}
        if module in cmdline and "serve" in cmdline and environ.get("AUTOLOADER_HOME") == str(home):
            return int(process.pid)
    raise AssertionError(f"no {module} process for {home}")


def test_a_killed_executor_is_restarted_and_its_run_taken_over(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "events"
    source.mkdir()
    for n in range(20):
        (source / f"part-{n:02}.csv").write_text("id,src\n" + "".join(f"{n * 10 + i},part-{n:02}\n" for i in range(10)))
    up = Up(home, {"AUTOLOADER_LEASE_SECONDS": "5", "AUTOLOADER_POLL_SECONDS": "0.2"})
    try:
        with up.http() as client:
            client.post(
                "/api/v1/ingestions",
                json={
                    "ingestion_id": "events",
                    "name": "events",
                    "source": {"uri": source.as_uri() + "/", "format": "csv", "options": {"header": "true"}},
                    "destination": {"table": "analytics.events"},
                },
            ).raise_for_status()
            assert cli(up, "sql", "SELECT 1").returncode == 0  # Spark is up: the run starts at once
            run_id = client.post("/api/v1/ingestions/events/run").json()["run_id"]
            deadline = time.monotonic() + 60
            while client.get(f"/api/v1/runs/{run_id}").json()["status"] != "RUNNING":
                assert time.monotonic() < deadline
                time.sleep(0.02)
            os.kill(child_pid(home, "services.executor"), signal.SIGKILL)
            deadline = time.monotonic() + 180
            while (run := client.get(f"/api/v1/runs/{run_id}").json())["status"] in ("QUEUED", "RUNNING"):
                assert time.monotonic() < deadline, run
                time.sleep(0.5)
        assert run["status"] == "SUCCESS", run
        assert run["rows_written"] == 200
        assert count_rows(up, "analytics.events") == 200
    finally:
        output = up.stop()
    assert "executor exited with code -9; restarting" in output
