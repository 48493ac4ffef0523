"""Processes a benchmark starts and watches: an embedded PostgreSQL, service processes, their peak memory."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from autoloader.stack.postgres import EmbeddedPostgres


@contextlib.contextmanager
def postgres(directory: Path) -> Iterator[str]:
    """A PostgreSQL server of its own for the benchmark; yields its URL."""
    server = EmbeddedPostgres(directory / "pgdata")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@dataclass
class Service:
    """`python -m services.<name> serve` with the given environment, its gRPC address once it serves."""

    name: str
    process: subprocess.Popen[bytes]
    address: str

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@contextlib.contextmanager
def service(name: str, env: dict[str, str], workdir: Path, timeout: float = 120) -> Iterator[Service]:
    port_file = workdir / f"{name}.port"
    port_file.unlink(missing_ok=True)
    log = (workdir / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", f"services.{name}", "serve"],
        env={**os.environ, "AUTOLOADER_GRPC_PORT": "0", "AUTOLOADER_LOG_LEVEL": "WARNING", **env,
             "AUTOLOADER_PORT_FILE": str(port_file)},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {workdir / f'{name}.log'}")
            time.sleep(0.05)
        running = Service(name, process, f"127.0.0.1:{port_file.read_text().strip()}")
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


@dataclass
class PeakMemory:
    """Samples the resident memory of processes (with their children) while a block runs."""

    pids: dict[str, int]
    interval: float = 0.02
    peaks: dict[str, int] = field(default_factory=dict)
    baseline: dict[str, int] = field(default_factory=dict)

    def _rss(self, pid: int) -> int:
        try:
            process = psutil.Process(pid)
            return int(process.memory_info().rss) + sum(
                int(c.memory_info().rss) for c in process.children(recursive=True)
            )
        except psutil.NoSuchProcess:
            return 0

    @contextlib.contextmanager
    def watching(self) -> Iterator[PeakMemory]:
        self.baseline = {name: self._rss(pid) for name, pid in self.pids.items()}
        self.peaks = dict(self.baseline)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                for name, pid in self.pids.items():
                    self.peaks[name] = max(self.peaks[name], self._rss(pid))
                done.wait(self.interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            done.set()
            thread.join()

    def growth_mib(self, name: str) -> float:
        return (self.peaks[name] - self.baseline[name]) / 2**20

    def peak_mib(self, name: str) -> float:
        return self.peaks[name] / 2**20


def database_pid(url: str) -> int:
    """The pid of the PostgreSQL server listening on the URL's port (its backends are its children)."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
            return int(connection.pid)
    raise RuntimeError(f"no process listens on port {port}")
