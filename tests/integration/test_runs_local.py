"""Runs through the real parts: HTTP → control → tracker → executor (Spark, Iceberg) on a local directory."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


def write_csv(directory: Path, name: str, rows: int, start: int = 0) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["id,name"] + [f"{i},user-{i}" for i in range(start, start + rows)]
    (directory / name).write_text("\n".join(lines) + "\n")


async def create_ingestion(client: httpx.AsyncClient, source: Path, table: str, **extra: Any) -> str:
    ingestion_id = f"local-{uuid.uuid4().hex[:8]}"
    body = {
        "ingestion_id": ingestion_id,
        "name": "local csv",
        "source": {"uri": source.as_uri() + "/", "format": "csv", "options": {"header": "true"}},
        "destination": {"table": table},
        **extra,
    }
    response = await client.post("/api/v1/ingestions", json=body)
    assert response.status_code == 201, response.text
    return ingestion_id


async def run_once(stack: InProcessStack, client: httpx.AsyncClient, ingestion_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "QUEUED"
    return await stack.wait_for_run(response.json()["run_id"])


async def test_incremental_runs_load_each_new_file_once(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "users"
    for n in range(3):
        write_csv(source, f"part-{n}.csv", rows=10, start=n * 10)
    table = f"itest.users_{uuid.uuid4().hex[:6]}"
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table)

        first = await run_once(loading_stack, client, ingestion_id)
        assert first["status"] == "SUCCESS", first
        assert (first["files_discovered"], first["files_processed"], first["rows_written"]) == (3, 3, 30)
        assert first["snapshot_id"] and first["batch_key"] == f"{ingestion_id}:1"

        empty = await run_once(loading_stack, client, ingestion_id)
        assert empty["status"] == "SUCCESS"
        assert (empty["files_discovered"], empty["files_processed"], empty["rows_written"]) == (3, 0, 0)
        assert "snapshot_id" not in empty and empty["batch_key"] == ""

        write_csv(source, "part-3.csv", rows=5, start=30)
        third = await run_once(loading_stack, client, ingestion_id)
        assert (third["files_processed"], third["rows_written"]) == (1, 5)

        files = (await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files")).json()
        assert sorted(f["key"] for f in files["processed_files"]) == [f"part-{n}.csv" for n in range(4)]
        assert {f["status"] for f in files["processed_files"]} == {"PROCESSED"}
        runs = (await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")).json()["runs"]
        assert [r["run_id"] for r in runs] == [third["run_id"], empty["run_id"], first["run_id"]]

    count = await loading_stack.sql(f"SELECT count(*), count(DISTINCT id) FROM {table}")
    assert count == [["35", "35"]]
