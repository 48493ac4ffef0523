"""Previews through the real services: an executor lists the source, the tracker plans it with the run's
own SQL, and the answer matches what the next run then processes, file for file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_run_files import (
    GARBAGE,
    create_ingestion,
    csv_text,
    file_records,
    new_table,
    run_once,
    write,
)
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


async def preview(client: httpx.AsyncClient, ingestion_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/api/v1/ingestions/{ingestion_id}/preview", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def loaded_by(client: httpx.AsyncClient, ingestion_id: str, run_id: str) -> list[str]:
    """Keys whose latest handling was this run, in key order."""
    return sorted(r["key"] for r in await file_records(client, ingestion_id) if r["run_id"] == run_id)


async def test_preview_counts_match_the_next_runs_files_exactly(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    for n in range(3):
        write(source / f"old-{n}.csv", csv_text(range(n * 10, n * 10 + 3)), mtime=T0 + n)
    table = new_table("preview")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv")
        before = await preview(client, ingestion_id)
        assert (before["files_to_process"], before["files_discovered"], before["table_exists"]) == (3, 3, False)
        first = await run_once(loading_stack, client, ingestion_id)
        assert first["files_processed"] == 3

        # New files of several sizes, one of them not CSV at all (tried as the others: it counts).
        sizes = {}
        for n in range(4):
            sizes[f"new-{n}.csv"] = write(source / f"new-{n}.csv", csv_text(range(100 + n, 101 + n)), mtime=T0 + 10 + n)
        sizes["bad.parquet"] = write(source / "bad.parquet", GARBAGE, mtime=T0 + 20)
        answer = await preview(client, ingestion_id, page_size=2)
        expected = {k: p.stat().st_size for k, p in sizes.items()}
        assert answer["files_to_process"] == 5 == answer["files_pending"]
        assert answer["bytes_to_process"] == sum(expected.values()) == answer["bytes_pending"]
        assert answer["files_discovered"] == 8 and answer["table_exists"] is True
        assert [f["key"] for f in answer["files"]] == ["new-0.csv", "new-1.csv"]  # oldest first, page_size 2
        assert answer.get("warnings", []) == []

        # The preview changed nothing: no run, no record.
        assert len((await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")).json()["runs"]) == 1
        assert len(await file_records(client, ingestion_id)) == 3

        second = await run_once(loading_stack, client, ingestion_id)
        assert second["files_processed"] + second["files_failed"] == answer["files_to_process"]
        failed_bytes = sum(
            r["size"] for r in await file_records(client, ingestion_id, "FAILED") if r["run_id"] == second["run_id"]
        )
        assert second["bytes_processed"] + failed_bytes == answer["bytes_to_process"]
        assert await loaded_by(client, ingestion_id, second["run_id"]) == sorted(expected)


async def test_with_run_limits_the_preview_names_the_files_the_next_run_takes(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    for n in range(5):
        write(source / f"f-{n}.csv", csv_text(range(n, n + 1)), mtime=T0 + 100 - n)  # newest name is oldest file
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, new_table("limited"), "csv", max_files_per_run=2)
        answer = await preview(client, ingestion_id)
        assert (answer["files_to_process"], answer["files_pending"]) == (2, 5)
        assert [f["key"] for f in answer["files"]] == ["f-4.csv", "f-3.csv"]
        assert any("5 files wait" in w for w in answer["warnings"]), answer
        run = await run_once(loading_stack, client, ingestion_id)
        assert await loaded_by(client, ingestion_id, run["run_id"]) == ["f-3.csv", "f-4.csv"]
        after = await preview(client, ingestion_id)
        assert [f["key"] for f in after["files"]] == ["f-2.csv", "f-1.csv"] and after["files_pending"] == 3


async def test_preview_warns_of_duplicates_when_records_were_cleared_and_the_table_kept(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write(source / "a.csv", csv_text(range(3)))
    write(source / "b.csv", csv_text(range(3, 5)))
    table = new_table("dupes")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv")
        await run_once(loading_stack, client, ingestion_id)
        cleared = await client.delete(f"/api/v1/ingestions/{ingestion_id}/processed-files", params={"keys": "a.csv"})
        assert cleared.json()["files_cleared"] == 1, cleared.text

        kept = await preview(client, ingestion_id)
        assert kept["files_to_process"] == 1 and kept["table_exists"] is True
        [warning] = [w for w in kept["warnings"] if "duplicates" in w]
        assert warning.startswith("1 of the files to process were loaded into " + table)

        await loading_stack.sql(f"DROP TABLE {table}")
        dropped = await preview(client, ingestion_id)
        assert dropped["table_exists"] is False
        assert not [w for w in dropped.get("warnings", []) if "duplicates" in w]


async def test_preview_of_an_active_ingestion_names_the_run_and_a_missing_one_is_404(
    stack: InProcessStack, tmp_path: Path
) -> None:
    async with stack.http(stack.admin_token) as client:
        missing = await client.get("/api/v1/ingestions/no-such-ingestion/preview")
        assert missing.status_code == 404
        ingestion_id = await create_ingestion(client, tmp_path, new_table("nobody"), "csv")
        too_many = await client.get(f"/api/v1/ingestions/{ingestion_id}/preview", params={"page_size": 1001})
        assert too_many.status_code == 400 and "page_size" in too_many.text
        # No executor runs next to `stack`: the preview waits its 2 s, then says so.
        unanswered = await client.get(f"/api/v1/ingestions/{ingestion_id}/preview")
        assert unanswered.status_code == 504 and "no executor answered" in unanswered.json()["message"]
