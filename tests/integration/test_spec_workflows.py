"""The user-facing workflows of spec/overwrite-mode-alternative.md, end to end, on a local directory and on S3.

The spec's Comparison Table has four scenarios; one test walks them in the table's order of use on one
ingestion (normal incremental → drop table only → drop + clear processed files → clear without drop),
once per source kind. Every file holds distinct row ids, so a file loaded twice or lost shows in the ids.

Tables are dropped with plain `DROP TABLE` (the spec's SQL). On the JDBC catalog that keeps the data
files (DESIGN §5); the re-created table lives at the same location and must not see them.

Run with `-s` to see rows and seconds per run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from tests.support.s3 import S3Server, running_s3_server
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

ROWS_PER_FILE = 10
NAMESPACE = "itest"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 API server on 127.0.0.1:<dynamic port>, with env:AUTOLOADER_TEST_S3 credentials exported."""
    with running_s3_server() as server:
        yield server


# --- sources files land in ---------------------------------------------------------------------------


class Landing(Protocol):
    kind: str

    def source(self) -> dict[str, Any]: ...

    def put(self, name: str, body: str) -> None: ...


@dataclass
class LocalLanding:
    directory: Path
    kind: str = "local"

    def source(self) -> dict[str, Any]:
        self.directory.mkdir(parents=True, exist_ok=True)
        return {"uri": self.directory.as_uri() + "/"}

    def put(self, name: str, body: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / name).write_text(body)


@dataclass
class S3Landing:
    server: S3Server
    bucket: str
    prefix: str
    kind: str = "s3"

    def source(self) -> dict[str, Any]:
        return self.server.source(self.bucket, self.prefix)

    def put(self, name: str, body: str) -> None:
        self.server.put_object(self.bucket, f"{self.prefix}/{name}", body)


def file_name(n: int) -> str:
    return f"part-{n:03d}.csv"


def file_ids(n: int) -> list[int]:
    """File n holds ids n*R .. n*R+R-1: every row id in the source is distinct."""
    return list(range(n * ROWS_PER_FILE, (n + 1) * ROWS_PER_FILE))


def add_files(landing: Landing, numbers: range) -> list[int]:
    """Land files `numbers`; return the ids they hold."""
    ids: list[int] = []
    for n in numbers:
        lines = ["id,name"] + [f"{i},user-{i}" for i in file_ids(n)]
        landing.put(file_name(n), "\n".join(lines) + "\n")
        ids += file_ids(n)
    return ids


# --- the API and the table ---------------------------------------------------------------------------


@dataclass
class Timings:
    label: str
    runs: list[tuple[str, int, int, float]] = field(default_factory=list)

    def record(self, step: str, run: dict[str, Any], seconds: float) -> None:
        files, rows = int(run.get("files_processed", 0)), int(run.get("rows_written", 0))
        self.runs.append((step, files, rows, seconds))
        status = run.get("status")
        print(f"\n[{self.label}] {step}: {status} files_processed={files} rows_written={rows} {seconds:.2f}s")


async def create_ingestion(client: httpx.AsyncClient, landing: Landing, table: str) -> str:
    ingestion_id = f"spec-{landing.kind}-{uuid.uuid4().hex[:8]}"
    body = {
        "ingestion_id": ingestion_id,
        "name": f"spec workflows ({landing.kind})",
        "source": {**landing.source(), "format": "csv", "options": {"header": "true"}},
        "destination": {"table": table, "write_mode": "append"},
    }
    response = await client.post("/api/v1/ingestions", json=body)
    assert response.status_code == 201, response.text
    return ingestion_id


async def run_once(
    stack: InProcessStack, client: httpx.AsyncClient, ingestion_id: str, step: str, timings: Timings
) -> dict[str, Any]:
    """Trigger a run (202 QUEUED), wait for its end; record its rows and seconds (trigger → end)."""
    started = time.monotonic()
    response = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "QUEUED", response.text
    run = await stack.wait_for_run(response.json()["run_id"])
    timings.record(step, run, time.monotonic() - started)
    assert run["status"] == "SUCCESS", f"{step}: {run}"
    return run


async def clear_processed_files(client: httpx.AsyncClient, ingestion_id: str) -> int:
    response = await client.delete(f"/api/v1/ingestions/{ingestion_id}/processed-files")
    assert response.status_code == 200, response.text
    body = response.json()
    cleared = body["files_cleared"]
    assert isinstance(cleared, int), body  # a JSON number, as in the spec's example (not an int64 string)
    assert body == {
        "message": f"Cleared {cleared} processed file records",
        "files_cleared": cleared,
        "ingestion_id": ingestion_id,
    }
    return cleared


async def file_records(client: httpx.AsyncClient, ingestion_id: str, status: str = "") -> dict[str, str]:
    """key → status of every processed-file record (optionally of one status)."""
    params: dict[str, Any] = {"page_size": 1000}
    if status:
        params["status"] = status
    response = await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("next_page_token"), body
    return {f["key"]: f["status"] for f in body.get("processed_files", [])}


async def table_ids(stack: InProcessStack, table: str) -> list[int]:
    """Every row's id, sorted, duplicates kept."""
    rows = await stack.sql(f"SELECT CAST(id AS INT) FROM {table} ORDER BY 1")
    return [int(str(r[0])) for r in rows]


async def counts(stack: InProcessStack, table: str) -> tuple[int, int]:
    [[total, distinct]] = await stack.sql(f"SELECT count(*), count(DISTINCT id) FROM {table}")
    return int(str(total)), int(str(distinct))


async def columns(stack: InProcessStack, table: str) -> list[list[str | None]]:
    return await stack.sql(f"DESCRIBE TABLE {table}")


async def table_exists(stack: InProcessStack, table: str) -> bool:
    namespace, name = table.split(".")
    rows = await stack.sql(f"SHOW TABLES IN {namespace}")
    return any(r[1] == name for r in rows)


async def drop_table(stack: InProcessStack, table: str) -> None:
    await stack.sql(f"DROP TABLE {table}")
    assert not await table_exists(stack, table), f"{table} still listed after DROP TABLE"


# --- the four scenarios ------------------------------------------------------------------------------


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["local", "s3"])
async def test_comparison_table_workflows(
    kind: str, loading_stack: InProcessStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    landing: Landing
    if kind == "local":
        landing = LocalLanding(tmp_path / "landing")
    else:
        server: S3Server = request.getfixturevalue("s3_server")
        landing = S3Landing(server, server.create_bucket(), "landing/events")
    table = f"{NAMESPACE}.spec_{kind}_{uuid.uuid4().hex[:6]}"
    timings = Timings(kind)
    stack = loading_stack

    async with stack.http(stack.admin_token) as client:
        # Setup: F=3 files already loaded by a first run.
        all_ids = add_files(landing, range(0, 3))
        ingestion_id = await create_ingestion(client, landing, table)
        first = await run_once(stack, client, ingestion_id, "initial load (3 files)", timings)
        assert (first["files_discovered"], first["files_processed"], first["rows_written"]) == (3, 3, 30), first
        assert await table_ids(stack, table) == sorted(all_ids)
        schema = await columns(stack, table)
        assert [r[0] for r in schema[:2]] == ["id", "name"], schema

        # 1. Normal incremental (no drop, no clear): only the new files load.
        all_ids += add_files(landing, range(3, 5))
        run = await run_once(stack, client, ingestion_id, "1 normal incremental (+2 files)", timings)
        assert (run["files_discovered"], run["files_processed"], run["rows_written"]) == (5, 2, 20), run
        assert await table_ids(stack, table) == sorted(all_ids), "each row exactly once"
        assert await file_records(client, ingestion_id) == {file_name(n): "PROCESSED" for n in range(5)}

        # 2. Drop table only, new files arrived: a new table with ONLY the files added since.
        await drop_table(stack, table)
        new_ids = add_files(landing, range(5, 6))
        all_ids += new_ids
        run = await run_once(stack, client, ingestion_id, "2 drop table only (+1 file)", timings)
        assert (run["files_discovered"], run["files_processed"], run["rows_written"]) == (6, 1, 10), run
        assert await table_ids(stack, table) == sorted(new_ids), "old files stay processed and are skipped"
        assert await columns(stack, table) == schema
        assert await file_records(client, ingestion_id, "PROCESSED") == {file_name(n): "PROCESSED" for n in range(6)}

        # 2b. Drop table only, nothing new: the table comes back, empty, with the remembered schema.
        await drop_table(stack, table)
        run = await run_once(stack, client, ingestion_id, "2b drop table only (nothing new)", timings)
        assert (run["files_discovered"], run["files_processed"], run["rows_written"]) == (6, 0, 0), run
        assert "snapshot_id" not in run, run
        assert await table_exists(stack, table), "the dropped table was not re-created"
        assert await counts(stack, table) == (0, 0)
        assert await columns(stack, table) == schema

        # 3. Drop table + clear processed files: every file of the source exactly once.
        await drop_table(stack, table)
        records = await file_records(client, ingestion_id)
        assert len(records) == 6, records
        assert await clear_processed_files(client, ingestion_id) == len(records)
        # The spec: "Safe to call multiple times (idempotent)"; nothing is running here.
        assert await clear_processed_files(client, ingestion_id) == 0
        assert await file_records(client, ingestion_id) == {}
        run = await run_once(stack, client, ingestion_id, "3 drop + clear (full reprocess)", timings)
        assert (run["files_discovered"], run["files_processed"], run["rows_written"]) == (6, 6, 60), run
        assert await counts(stack, table) == (60, 60)
        assert await table_ids(stack, table) == sorted(all_ids), "every file exactly once"
        assert await columns(stack, table) == schema

        # 4. Clear without drop: every file appended again — the documented duplicates.
        assert await clear_processed_files(client, ingestion_id) == 6
        assert await counts(stack, table) == (60, 60), "clearing records must not touch the table"
        run = await run_once(stack, client, ingestion_id, "4 clear without drop (duplicates)", timings)
        assert (run["files_discovered"], run["files_processed"], run["rows_written"]) == (6, 6, 60), run
        assert await counts(stack, table) == (120, 60)
        assert await table_ids(stack, table) == sorted(all_ids * 2), "every row exactly twice"
        assert await file_records(client, ingestion_id, "PROCESSED") == {file_name(n): "PROCESSED" for n in range(6)}

        runs = (await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")).json()["runs"]
        assert [r["status"] for r in runs] == ["SUCCESS"] * 6, runs

    print(f"\n[{kind}] runs (step, files, rows, seconds): {timings.runs}")


# --- many small files ---------------------------------------------------------------------------------


@pytest.mark.timeout(600)
async def test_hundred_small_files_then_an_empty_run(loading_stack: InProcessStack, tmp_path: Path) -> None:
    landing = LocalLanding(tmp_path / "many")
    files, rows_per_file = 100, 5
    for n in range(files):
        lines = ["id,name"] + [f"{i},user-{i}" for i in range(n * rows_per_file, (n + 1) * rows_per_file)]
        landing.put(file_name(n), "\n".join(lines) + "\n")
    table = f"{NAMESPACE}.many_{uuid.uuid4().hex[:6]}"
    timings = Timings("100 files")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, landing, table)
        full = await run_once(loading_stack, client, ingestion_id, "100 small files", timings)
        assert (full["files_discovered"], full["files_processed"], full["rows_written"]) == (100, 100, 500), full
        assert full["bytes_processed"] == sum(p.stat().st_size for p in landing.directory.iterdir()), full
        empty = await run_once(loading_stack, client, ingestion_id, "empty run after", timings)
        assert (empty["files_discovered"], empty["files_processed"], empty["rows_written"]) == (100, 0, 0), empty
        assert "snapshot_id" not in empty and empty["batch_key"] == "", empty
    assert await counts(loading_stack, table) == (500, 500)
    print(f"\n[100 files] runs (step, files, rows, seconds): {timings.runs}")
