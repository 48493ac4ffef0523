"""Case f: the REST API under 50 concurrent clients. Latency (p50, p99, max) and throughput of
`GET /api/v1/runs/{run_id}` and `POST /api/v1/ingestions/{ingestion_id}/run` through the gateway, with the
tracker, the control service and the gateway each a process of its own on an embedded PostgreSQL.

Clients: one process runs `clients` asyncio tasks, each with an httpx.AsyncClient of its own holding one
keep-alive connection (50 independent callers, not one shared pool whose lock would add client-side waiting
to the figures). Each task takes the next request from a shared list as soon as its previous one is answered
(a closed loop), so the clients push the services as hard as they can answer. The client process shares the
machine's cores with the services, and so does whatever else runs there: the CPU time each process (and the
rest of the machine) spent per request is reported alongside, so a busy machine shows in the figures.

POST: no executor runs, so every run stays QUEUED, and a second `POST …/run` of an ingestion with an active
run is a 409. Each measured POST therefore runs an ingestion of its own, created before the clock starts:
every measured request is a real 202 that queues a run, with nothing untimed (a cancel) interleaved between
requests. The body is `{}` (no request_id), as the CLI sends it. GET: the runs queued by the warm-up POSTs,
read in turn. GETs are timed first, then POSTs, never both at once.

    python -m bench.api_load [--small]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from autoloader.stack.bootstrap import prepare_database
from bench.processes import database_pid, postgres, service

CLIENTS = 50
FULL_GETS, FULL_POSTS = 5_000, 2_000
SMALL_GETS, SMALL_POSTS = 500, 200
GET_ROUTE = "GET /api/v1/runs/{run_id}"
POST_ROUTE = "POST /api/v1/ingestions/{ingestion_id}/run"
LOG_LEVEL = "INFO"  # the services' default: the access log lines are part of what a request costs


@dataclass(frozen=True)
class ApiResult:
    route: str
    requests: int
    clients: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    seconds: float
    errors: int  # answers other than the route's success status, and requests that got no answer
    statuses: dict[int, int]  # how many requests got each status (0: no answer)
    cpu_seconds: dict[str, float]  # per process (services, database with its backends, client) in the phase

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Outcome:
    seconds: float
    status: int  # 0: no answer (connection error, timeout)


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile: always one of the values, so p50 <= p99 <= max holds by construction."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Gateway:
    url: str
    pid: int


@contextlib.contextmanager
def gateway(env: dict[str, str], workdir: Path, timeout: float = 60) -> Iterator[Gateway]:
    """`python -m gateway serve` on a free port, once /healthz answers 200."""
    port_file = workdir / "gateway.port"
    port_file.unlink(missing_ok=True)
    with (workdir / "gateway.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"],
            env={**os.environ, **env, "AUTOLOADER_HTTP_PORT": "0", "AUTOLOADER_PORT_FILE": str(port_file)},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the gateway did not start; see {workdir / 'gateway.log'}")
                # The port is written once bound, a moment before uvicorn accepts: wait for /healthz too.
                if port_file.exists() and port_file.read_text().strip():
                    url = f"http://127.0.0.1:{port_file.read_text().strip()}"
                    with contextlib.suppress(httpx.TransportError):
                        if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                            break
                time.sleep(0.05)
            yield Gateway(url, process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


OTHERS = "others"


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


class CpuMeter:
    """CPU seconds (user + system) each watched process spends between two readings; with its children when
    they are part of it (the database's backends), without when they are not (the client started the services).
    "others": what the rest of the machine spent meanwhile, since a shared machine skews every figure.
    """

    def __init__(self, pids: dict[str, int], without_children: Sequence[str] = ()) -> None:
        self._processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._without_children = set(without_children)

    def _read(self) -> dict[str, float]:
        totals = {}
        for name, process in self._processes.items():
            total = 0.0
            children = [] if name in self._without_children else process.children(recursive=True)
            for p in [process, *children]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    times = p.cpu_times()
                    total += times.user + times.system
            totals[name] = total
        totals[OTHERS] = machine_busy_seconds() - sum(totals.values())
        return totals

    @contextlib.contextmanager
    def measuring(self) -> Iterator[dict[str, float]]:
        spent: dict[str, float] = {}
        before = self._read()
        try:
            yield spent
        finally:
            after = self._read()
            spent.update({name: after[name] - before[name] for name in before})


@contextlib.asynccontextmanager
async def clients_of(url: str, token: str, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """count independent clients, one keep-alive connection each."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=url,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                    limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
                )
            )
            for _ in range(count)
        ]


async def drive(clients: list[httpx.AsyncClient], method: str, paths: Sequence[str]) -> tuple[list[Outcome], float]:
    """Send every path once, each client taking the next as soon as it has its answer; (outcomes, wall s)."""
    pending = iter(paths)  # shared by the tasks; safe, as they only take from it between awaits
    outcomes: list[Outcome] = []

    async def client_loop(client: httpx.AsyncClient) -> None:
        for path in pending:
            started = time.perf_counter()
            try:
                status = (await client.request(method, path, json={} if method == "POST" else None)).status_code
            except httpx.HTTPError:
                status = 0
            outcomes.append(Outcome(time.perf_counter() - started, status))

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(c) for c in clients))
    return outcomes, time.perf_counter() - started


def summarize(
    route: str, outcomes: list[Outcome], seconds: float, clients: int, success: int, cpu: dict[str, float]
) -> ApiResult:
    latencies = sorted(o.seconds * 1000 for o in outcomes)
    return ApiResult(
        route=route,
        requests=len(outcomes),
        clients=clients,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1],
        seconds=seconds,
        errors=sum(o.status != success for o in outcomes),
        statuses=dict(collections.Counter(o.status for o in outcomes)),
        cpu_seconds=cpu,
    )


def ingestion(ingestion_id: str, workdir: Path) -> dict[str, object]:
    return {
        "ingestion_id": ingestion_id,
        "name": f"api load {ingestion_id}",
        "source": {"uri": f"file://{workdir}/landing/", "format": "json"},
        "destination": {"table": f"bench.{ingestion_id.replace('-', '_')}"},
    }


async def create_ingestions(clients: list[httpx.AsyncClient], ids: Sequence[str], workdir: Path) -> None:
    pending = iter(ids)

    async def client_loop(client: httpx.AsyncClient) -> None:
        for ingestion_id in pending:
            response = await client.post("/api/v1/ingestions", json=ingestion(ingestion_id, workdir))
            if response.status_code != 201:
                raise RuntimeError(f"creating {ingestion_id}: {response.status_code} {response.text}")

    await asyncio.gather(*(client_loop(c) for c in clients))


async def load(
    url: str, token: str, pids: dict[str, int], workdir: Path, *, clients: int, gets: int, posts: int
) -> list[ApiResult]:
    """Prepare ingestions, warm up, then time the GETs and the POSTs, one route after the other."""
    warmup_posts = clients  # their runs are what the GETs read
    warmup_gets = 2 * clients
    ids = [f"load-{n:05d}" for n in range(warmup_posts + posts)]
    meter = CpuMeter({**pids, "client": os.getpid()}, without_children=["client"])
    async with clients_of(url, token, clients) as pool:
        await create_ingestions(pool, ids, workdir)
        # Warm-up: connections opened, code paths and database caches hot, statement caches filled.
        outcomes, _ = await drive(pool, "POST", [f"/api/v1/ingestions/{i}/run" for i in ids[:warmup_posts]])
        if any(o.status != 202 for o in outcomes):
            raise RuntimeError(f"warm-up POSTs answered {sorted({o.status for o in outcomes})}")
        run_ids = await queued_runs(pool[0], ids[:warmup_posts])
        get_paths = [f"/api/v1/runs/{r}" for r in itertools.islice(itertools.cycle(run_ids), warmup_gets + gets)]
        await drive(pool, "GET", get_paths[:warmup_gets])

        with meter.measuring() as cpu:
            outcomes, seconds = await drive(pool, "GET", get_paths[warmup_gets:])
        results = [summarize(GET_ROUTE, outcomes, seconds, clients, 200, cpu)]
        with meter.measuring() as cpu:
            outcomes, seconds = await drive(pool, "POST", [f"/api/v1/ingestions/{i}/run" for i in ids[warmup_posts:]])
        results.append(summarize(POST_ROUTE, outcomes, seconds, clients, 202, cpu))
    return results


async def queued_runs(client: httpx.AsyncClient, ingestion_ids: Sequence[str]) -> list[str]:
    """The run each ingestion queued during the warm-up."""
    run_ids = []
    for ingestion_id in ingestion_ids:
        response = await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")
        response.raise_for_status()
        run_ids.append(response.json()["runs"][0]["run_id"])
    return run_ids


async def measure(
    small: bool, workdir: Path, *, clients: int = CLIENTS, gets: int | None = None, posts: int | None = None
) -> list[ApiResult]:
    """Start PostgreSQL, tracker, control and gateway as processes and load the two routes; [GET, POST]."""
    gets = gets if gets is not None else (SMALL_GETS if small else FULL_GETS)
    posts = posts if posts is not None else (SMALL_POSTS if small else FULL_POSTS)
    (workdir / "home").mkdir(exist_ok=True)
    (workdir / "landing").mkdir(exist_ok=True)
    with postgres(workdir) as database_url:
        credentials = await prepare_database(database_url, workdir / "home")
        common = {
            "AUTOLOADER_DATABASE_URL": database_url,
            "AUTOLOADER_LOG_LEVEL": LOG_LEVEL,
            "AUTOLOADER_HOME": str(workdir / "home"),  # where the services keep their secret key, not ~/.autoloader
        }
        control_env = {
            **common,
            "AUTOLOADER_TOKEN": credentials.executor_token,  # control calls the tracker with its service token
        }
        with (
            service("tracker", common, workdir) as tracker,
            service("control", {**control_env, "AUTOLOADER_TRACKER_ADDRESS": tracker.address}, workdir) as control,
        ):
            gateway_env = {
                "AUTOLOADER_LOG_LEVEL": LOG_LEVEL,
                # The clients share one token: the per-token limit would measure itself, not the API.
                "AUTOLOADER_RATE_LIMIT_PER_SECOND": "0",
                "AUTOLOADER_CONTROL_ADDRESS": control.address,
                "AUTOLOADER_TRACKER_ADDRESS": tracker.address,
            }
            with gateway(gateway_env, workdir) as http:
                pids = {
                    "gateway": http.pid,
                    "control": control.process.pid,
                    "tracker": tracker.process.pid,
                    "database": database_pid(database_url),
                }
                return await load(
                    http.url, credentials.admin_token, pids, workdir, clients=clients, gets=gets, posts=posts
                )


def case_f(small: bool) -> list[str]:
    with tempfile.TemporaryDirectory(prefix="bench-f-") as directory:
        results = asyncio.run(measure(small, Path(directory)))
    lines = [
        f"## f. API under {CLIENTS} concurrent clients",
        "",
        f"{CLIENTS} clients (one keep-alive connection each, closed loop, after a warm-up) call the gateway, with the"
        " tracker, the control service and PostgreSQL each a process of its own and no executor, every POST queuing"
        " a run of an ingestion of its own; the client process shares the machine's 2 cores with the services.",
        "",
        "| route | requests | clients | p50 ms | p99 ms | max ms | req/s | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| `{r.route}` | {r.requests:,} | {r.clients} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.max_ms:.1f} |"
            f" {r.per_second:,.0f} | {r.errors} |"
        )
    names = list(results[0].cpu_seconds)
    lines += [
        "",
        "CPU ms per request, by process (database: the server and its backends; others: the rest of the machine):",
        "",
        "| route | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for r in results:
        lines.append(
            f"| `{r.route}` | " + " | ".join(f"{1000 * r.cpu_seconds[n] / r.requests:.2f}" for n in names) + " |"
        )
    lines += ["", verdict(results), ""]
    return lines


def verdict(results: Sequence[ApiResult]) -> str:
    errors = sum(r.errors for r in results)
    if errors:
        return f"NOT clean: {errors} requests did not get their success status."
    worst = max(results, key=lambda r: r.p99_ms)
    line = (
        f"Every request got its success status (200, 202); the slowest p99 is {worst.p99_ms:.0f} ms (`{worst.route}`)."
    )
    busy = sum(r.cpu_seconds.get(OTHERS, 0.0) for r in results) / sum(r.seconds for r in results)
    if busy > 0.2:
        line += f" Other work kept {busy:.1f} of the 2 cores busy meanwhile: an idle machine answers faster."
    return line


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="about 10x fewer requests: a quick check")
    arguments = parser.parse_args()
    print("\n".join(case_f(arguments.small)))


if __name__ == "__main__":
    main()
