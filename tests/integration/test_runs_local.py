"""Runs through the real parts: HTTP → control → tracker → executor (Spark, Iceberg) on a local directory."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.runs import create_ingestion, run_once, write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


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
