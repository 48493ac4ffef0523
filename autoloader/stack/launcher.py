"""`autoloader up`: PostgreSQL (embedded unless AUTOLOADER_DATABASE_URL is set), the three services and
the gateway as child processes on 127.0.0.1, stopped together on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from autoloader.stack.bootstrap import prepare_database
from autoloader.stack.postgres import EmbeddedPostgres

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
MAX_BACKOFF_SECONDS = 30.0
BACKOFF_RESET_SECONDS = 60.0
ENDPOINT_ALLOWLIST_VARIABLE = "AUTOLOADER_ENDPOINT_ALLOWLIST"
# A trial stack runs on one machine, where a test S3 store (MinIO, moto) listens on loopback.
LOCAL_ENDPOINTS = "127.0.0.0/8,[::1]"


def _terminate_with_parent() -> None:
    """In the child: get SIGTERM if the launcher dies, even by SIGKILL (Linux), so nothing is orphaned."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _trial_environment() -> dict[str, str]:
    """The user's environment without TLS settings: the trial stack talks plaintext on loopback, and its own
    health checks would not reach services that a shell's AUTOLOADER_TLS_* turned to TLS."""
    return {name: value for name, value in os.environ.items() if not name.startswith("AUTOLOADER_TLS_")}


def endpoint_allowlist_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Let sources' S3 endpoints reach loopback, unless the user chose AUTOLOADER_ENDPOINT_ALLOWLIST."""
    if ENDPOINT_ALLOWLIST_VARIABLE in (os.environ if environ is None else environ):
        return {}  # inherited by the children as set
    return {ENDPOINT_ALLOWLIST_VARIABLE: LOCAL_ENDPOINTS}


class LaunchError(RuntimeError):
    pass


@dataclass
class Child:
    """One service process, restarted with backoff when it dies, on the port it first bound."""

    name: str
    module: str
    env: dict[str, str]
    port_variable: str
    port_file: Path
    log_file: Path
    process: subprocess.Popen[bytes] | None = None
    bound_port: int | None = None
    restarts: int = 0
    restart_at: float | None = None
    started_at: float = 0.0

    def start(self) -> None:
        env = dict(self.env)
        if self.bound_port is not None:
            env[self.port_variable] = str(self.bound_port)  # clients already know this address
        self.port_file.unlink(missing_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, "serve"],
                env={**_trial_environment(), **env, "AUTOLOADER_PORT_FILE": str(self.port_file)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: Ctrl-C reaches only the launcher, which stops children in order.
                start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )
        self.started_at = time.monotonic()

    def running(self) -> subprocess.Popen[bytes]:
        assert self.process is not None
        return self.process

    def port(self, deadline: float) -> int:
        """Wait until the child reports its bound port (or dies)."""
        while time.monotonic() < deadline:
            if self.running().poll() is not None:
                raise LaunchError(f"{self.name} exited with code {self.running().returncode}\n{self.log_tail()}")
            if self.port_file.exists():
                self.bound_port = int(self.port_file.read_text())
                return self.bound_port
            time.sleep(0.05)
        raise LaunchError(f"{self.name} did not start within {START_TIMEOUT_SECONDS:.0f}s\n{self.log_tail()}")

    def supervise(self, now: float) -> None:
        """Called periodically: schedule a restart of a dead child, and carry it out when due."""
        if self.running().poll() is None:
            if now - self.started_at > BACKOFF_RESET_SECONDS:
                self.restarts = 0  # it has been up for a while: the next crash starts the backoff again
            return
        if self.restart_at is None:
            delay = min(2.0**self.restarts, MAX_BACKOFF_SECONDS)
            print(
                f"{self.name} exited with code {self.running().returncode}; restarting in {delay:.0f}s"
                f" (restart {self.restarts + 1})",
                file=sys.stderr,
                flush=True,
            )
            self.restart_at = now + delay
        elif now >= self.restart_at:
            self.restarts += 1
            self.restart_at = None
            self.start()

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Stack:
    home: Path
    http_port: int
    database_url: str | None
    children: list[Child] = field(default_factory=list)
    postgres: EmbeddedPostgres | None = None

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    def _spawn(self, name: str, module: str, env: dict[str, str], port_variable: str = "AUTOLOADER_GRPC_PORT") -> Child:
        run_dir, log_dir = self.home / "run", self.home / "logs"
        run_dir.mkdir(exist_ok=True)
        log_dir.mkdir(exist_ok=True)
        child = Child(
            name=name,
            module=module,
            env={**env, "AUTOLOADER_HOME": str(self.home)},
            port_variable=port_variable,
            port_file=run_dir / f"{name}.port",
            log_file=log_dir / f"{name}.log",
        )
        child.start()
        self.children.append(child)
        return child

    def start(self) -> dict[str, str]:
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        database_url = self.database_url
        if database_url is None:
            self.postgres = EmbeddedPostgres(self.home / "pgdata")
            if self.postgres.is_running():
                self.postgres.stop()  # left over from a launcher that was killed
            database_url = self.postgres.start()
        credentials = asyncio.run(prepare_database(database_url, self.home))
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        db_env = {"AUTOLOADER_DATABASE_URL": database_url, "AUTOLOADER_GRPC_PORT": "0"}
        # The tracker first: control and the executor are its clients.
        tracker = self._spawn("tracker", "services.tracker", db_env)
        tracker_address = f"127.0.0.1:{tracker.port(deadline)}"
        # Control (checks endpoints when ingestions are saved) and the executor (before it connects).
        clients_env = {**db_env, "AUTOLOADER_TRACKER_ADDRESS": tracker_address, **endpoint_allowlist_env()}
        # Control queues scheduled runs with the service token.
        control = self._spawn(
            "control", "services.control", {**clients_env, "AUTOLOADER_TOKEN": credentials.executor_token}
        )
        executor = self._spawn(
            "executor", "services.executor", {**clients_env, "AUTOLOADER_TOKEN": credentials.executor_token}
        )
        addresses = {
            "control": f"127.0.0.1:{control.port(deadline)}",
            "tracker": tracker_address,
            "executor": f"127.0.0.1:{executor.port(deadline)}",
        }
        gateway = self._spawn(
            "gateway",
            "gateway",
            {
                "AUTOLOADER_HTTP_PORT": str(self.http_port),
                "AUTOLOADER_CONTROL_ADDRESS": addresses["control"],
                "AUTOLOADER_TRACKER_ADDRESS": addresses["tracker"],
                "AUTOLOADER_EXECUTOR_ADDRESS": addresses["executor"],
            },
            port_variable="AUTOLOADER_HTTP_PORT",
        )
        http_url = f"http://127.0.0.1:{gateway.port(deadline)}"
        self._wait_healthy(http_url, gateway, deadline)
        state = {**{f"{n}_address": a for n, a in addresses.items()}, "http_url": http_url}
        self.state_file.write_text(json.dumps(state, indent=2))
        self._print_banner(state, credentials.admin_token if credentials.admin_token_is_new else None)
        return state

    def _wait_healthy(self, http_url: str, gateway: Child, deadline: float) -> None:
        while time.monotonic() < deadline:
            if gateway.running().poll() is not None:
                raise LaunchError(f"gateway exited with code {gateway.running().returncode}\n{gateway.log_tail()}")
            try:
                if httpx.get(f"{http_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise LaunchError(f"the stack did not become healthy within {START_TIMEOUT_SECONDS:.0f}s")

    def _print_banner(self, state: dict[str, str], new_token: str | None) -> None:
        token_file = self.home / "admin-token"
        db = f"embedded PostgreSQL, data in {self.home / 'pgdata'}" if self.postgres else "AUTOLOADER_DATABASE_URL"
        lines = [
            "Autoloader is up.",
            f"  HTTP API    {state['http_url']}   (OpenAPI: {state['http_url']}/api/v1/openapi.json)",
            f"  Console     {state['http_url']}/ui/   (sign in with the admin token)",
            f"  gRPC        control {state['control_address']}, tracker {state['tracker_address']},"
            f" executor {state['executor_address']}",
            f"  Database    {db}",
            f"  Logs        {self.home / 'logs'}",
        ]
        if new_token:
            lines.append(f"  Admin token (shown once, saved to {token_file}):")
            lines.append(f"    {new_token}")
        else:
            lines.append(f"  Admin token in {token_file}")
        lines.append("Press Ctrl-C to stop.")
        print("\n".join(lines), flush=True)

    def wait(self, stop: threading.Event) -> int:
        """Supervise the children until asked to stop: a child that dies is restarted with backoff."""
        while not stop.wait(0.5):
            now = time.monotonic()
            for child in self.children:
                child.supervise(now)
        return 0

    def stop(self) -> None:
        # Gateway first (no new requests), then the services, then the database.
        for child in reversed(self.children):
            if child.running().poll() is None:
                child.running().send_signal(signal.SIGTERM)
        for child in reversed(self.children):
            try:
                child.running().wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                child.running().kill()
                child.running().wait()
        self.children.clear()
        if self.postgres is not None:
            self.postgres.stop()
        self.state_file.unlink(missing_ok=True)


class Interrupted(Exception):
    pass


def run(home: Path, http_port: int, database_url: str | None) -> int:
    stop = threading.Event()
    starting = True

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        if starting:
            raise Interrupted  # abandon a start in progress; `finally` below stops what already runs

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    stack = Stack(home=home, http_port=http_port, database_url=database_url)
    try:
        stack.start()
        starting = False
        code = stack.wait(stop)
    except LaunchError as error:
        print(f"autoloader up failed: {error}", file=sys.stderr)
        code = 1
    except Interrupted:
        code = 130
    finally:
        starting = False  # a second Ctrl-C must not interrupt the orderly stop
        print("Stopping...", file=sys.stderr, flush=True)
        stack.stop()
        print("Stopped.", file=sys.stderr, flush=True)
    return code
