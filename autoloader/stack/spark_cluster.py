"""A Spark standalone cluster (one master, one worker) on 127.0.0.1, for tests, benchmarks and trials.

The JVM classes are started with `bin/spark-class` as child processes in process groups of their own rather
than with `sbin/spark-daemon.sh`: a child in the foreground is stopped by killing its group (the worker's
executor JVMs included), with no pid files to find. The Spark distribution is the one the driver uses
(SPARK_HOME, else the pyspark package), so master, worker and driver always run the same Spark version.

    with StandaloneCluster(Path("/tmp/cluster")) as cluster:
        settings = ExecutorSettings(spark_master=cluster.master_url, ...)
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 15.0
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


class ClusterError(RuntimeError):
    """The cluster did not come up; the message carries the tail of the master's and worker's logs."""


def spark_home() -> Path:
    """$SPARK_HOME if set, else the pyspark package (its wheel ships bin/ and jars/): what the driver uses."""
    configured = os.environ.get("SPARK_HOME")
    if configured:
        return Path(configured)
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise ClusterError("pyspark is not installed and SPARK_HOME is not set")
    return Path(next(iter(spec.submodule_search_locations)))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# Resolved in the parent: a child between fork and exec must not load libraries (it may deadlock).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _in_child() -> None:
    """Between fork and exec: a process group of its own, and SIGTERM when the parent dies (even by SIGKILL),
    so a crashed test run leaves no JVM behind. spark-class execs java, which keeps the death signal."""
    os.setsid()
    if _prctl is not None:
        pr_set_pdeathsig = 1
        _prctl(pr_set_pdeathsig, signal.SIGTERM)


def _get_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    # No proxy: an HTTP(S)_PROXY in the environment must not see loopback requests.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        document: dict[str, Any] = json.load(response)
        return document


class StandaloneCluster:
    """A master and one worker with `cores` cores and `memory` for executors, on dynamic loopback ports.

    Start it from a long-lived thread (the main thread, typically): Linux sends the parent-death signal when
    the thread that started the child exits.
    """

    def __init__(self, directory: Path, *, cores: int = 2, memory: str = "2g") -> None:
        self.directory = directory
        self.cores = cores
        self.memory = memory
        # Where the worker runs executors: one directory per application and executor, holding the executor's
        # stdout/stderr and the jars it fetched from the driver.
        self.work_dir = directory / "work"
        self._master_port = 0
        self._webui_port = 0
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def master_url(self) -> str:
        self._require_started()
        return f"spark://{HOST}:{self._master_port}"

    @property
    def web_url(self) -> str:
        """The master's web UI; its /json/ describes workers and applications."""
        self._require_started()
        return f"http://{HOST}:{self._webui_port}"

    def __enter__(self) -> StandaloneCluster:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start master and worker; return once the worker is registered ALIVE with the master."""
        if self._processes:
            raise ClusterError("the cluster is already started")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        conf_dir = self.directory / "conf"  # empty: no spark-defaults.conf of the user's leaks in
        conf_dir.mkdir(exist_ok=True)
        self._master_port, self._webui_port = _free_port(), _free_port()
        try:
            self._spawn(
                "master",
                MASTER_CLASS,
                ["--host", HOST, "--port", str(self._master_port), "--webui-port", str(self._webui_port)],
                conf_dir,
            )
            self._spawn(
                "worker",
                WORKER_CLASS,
                [
                    "--host", HOST,
                    "--webui-port", str(_free_port()),
                    "--cores", str(self.cores),
                    "--memory", self.memory,
                    "--work-dir", str(self.work_dir),
                    self.master_url,
                ],
                conf_dir,
            )  # fmt: skip
            self._wait_for_worker(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM to each process group (the worker's executors included), SIGKILL to what outlives the wait."""
        processes, self._processes = self._processes, {}
        self._master_port = self._webui_port = 0
        for process in processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for process in processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            # Executor JVMs of the worker may outlive it; the group reaches them.
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def state(self) -> dict[str, Any]:
        """The master's JSON: workers, activeapps (id, name, cores, state), completedapps, ..."""
        return _get_json(f"{self.web_url}/json/")

    def running_applications(self) -> list[dict[str, Any]]:
        applications: list[dict[str, Any]] = self.state().get("activeapps", [])
        return [a for a in applications if a.get("state") == "RUNNING"]

    def log_tail(self, characters: int = 3000) -> str:
        tails = []
        for name in ("master", "worker"):
            log = self.directory / f"{name}.log"
            if log.exists():
                tails.append(f"--- {name}.log ---\n{log.read_text(errors='replace')[-characters:]}")
        return "\n".join(tails)

    def _require_started(self) -> None:
        if not self._master_port:
            raise ClusterError("the cluster is not started")

    def _spawn(self, name: str, main_class: str, arguments: list[str], conf_dir: Path) -> None:
        home = spark_home()
        env = {
            **os.environ,
            "SPARK_HOME": str(home),
            "SPARK_CONF_DIR": str(conf_dir),
            # Bind and advertise loopback only; the machine's host name may not even resolve.
            "SPARK_LOCAL_IP": HOST,
            "SPARK_LOCAL_DIRS": str(self.directory / "local"),
            "SPARK_LOG_DIR": str(self.directory),
        }
        with (self.directory / f"{name}.log").open("ab") as log:
            self._processes[name] = subprocess.Popen(
                [str(home / "bin" / "spark-class"), main_class, *arguments],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_in_child,  # only setsid and prctl: nothing that takes a lock
            )

    def _wait_for_worker(self, deadline: float) -> None:
        while True:
            for name, process in self._processes.items():
                if process.poll() is not None:
                    raise ClusterError(f"the spark {name} exited ({process.returncode})\n{self.log_tail()}")
            try:
                workers = self.state().get("workers", [])
            except OSError:  # not listening yet
                workers = []
            if any(w.get("state") == "ALIVE" for w in workers):
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"no worker registered with the master in time\n{self.log_tail()}")
            time.sleep(0.25)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)  # the child called setsid: its pid is its group id
