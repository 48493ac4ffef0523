"""Clearing a subset of processed-file records (by key prefix, keys, status, modification time), and dry runs.

Through the whole stack: the next run loads again exactly the files whose records were cleared.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_run_files import (
    GARBAGE,
    counts,
    create_ingestion,
    file_records,
    new_table,
    run_once,
    write_rows,
)
from tests.integration.test_run_files import write as write_file
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


async def clear(client: httpx.AsyncClient, ingestion_id: str, **params: Any) -> httpx.Response:
    return await client.delete(f"/api/v1/ingestions/{ingestion_id}/processed-files", params=params)


async def keys(client: httpx.AsyncClient, ingestion_id: str) -> list[str]:
    return sorted(r["key"] for r in await file_records(client, ingestion_id))


async def test_selected_records_are_cleared_and_only_their_files_load_again(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    for n, (name, ids) in enumerate({"a/1": range(0, 3), "a/2": range(3, 5), "b/3": range(5, 9)}.items()):
        path = await write_rows(loading_stack, "parquet", ids, source / f"{name}.parquet", tmp_path)
        os.utime(path, (T0 + n * 3600, T0 + n * 3600))
    write_file(source / "b/bad.parquet", GARBAGE, mtime=T0 + 3 * 3600)
    sizes = {p.relative_to(source).as_posix(): p.stat().st_size for p in source.rglob("*.parquet")}
    table = new_table("selective")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "parquet")
        first = await run_once(loading_stack, client, ingestion_id)
        assert counts(first) == ("PARTIAL_SUCCESS", 4, 3, 1, 0, 9), first
        everything = await keys(client, ingestion_id)

        dry = await clear(client, ingestion_id, key_prefix="a/", dry_run="true")
        assert dry.status_code == 200, dry.text
        assert dry.json()["files_cleared"] == 2 and dry.json()["dry_run"] is True
        assert dry.json()["bytes_cleared"] == sizes["a/1.parquet"] + sizes["a/2.parquet"]
        assert dry.json()["message"].startswith("Would clear 2 processed file records; 2 of their files")
        # Both files are still in the source (an executor listed it): both would load again.
        assert dry.json()["files_to_reprocess"] == 2
        assert dry.json()["bytes_to_reprocess"] == dry.json()["bytes_cleared"]
        assert await keys(client, ingestion_id) == everything, "a dry run clears nothing"

        # A file gone from the source has a record to clear but nothing to load again.
        moved = source / "a/2.parquet"
        moved.rename(tmp_path / "a2-aside.parquet")
        gone = await clear(client, ingestion_id, key_prefix="a/", dry_run="true")
        assert (gone.json()["files_cleared"], gone.json()["files_to_reprocess"]) == (2, 1)
        assert gone.json()["bytes_to_reprocess"] == sizes["a/1.parquet"]
        (tmp_path / "a2-aside.parquet").rename(moved)

        failed = await clear(client, ingestion_id, status="FAILED")
        assert failed.json()["files_cleared"] == 1 and failed.json()["message"] == "Cleared 1 processed file records"
        listed = await clear(client, ingestion_id, keys=["b/3.parquet", "not/there.parquet"])
        assert listed.json()["files_cleared"] == 1
        early = await clear(client, ingestion_id, modified_before_time="2026-01-01T00:30:00Z")
        assert early.json()["files_cleared"] == 1
        assert await keys(client, ingestion_id) == ["a/2.parquet"]

        second = await run_once(loading_stack, client, ingestion_id)
        # a/1 and b/3 load again (3 + 4 rows); the bad file is tried again and fails again.
        assert counts(second) == ("PARTIAL_SUCCESS", 4, 2, 1, 0, 7), second


async def test_bad_selections_are_refused_naming_the_field(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    write_file(source / "a.csv", "id\n1\n")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, new_table("badsel"), "csv")
        cases = {
            "status": {"status": "CLAIMED"},
            "modified_after_time": {"modified_after_time": "yesterday"},
            "modified_before_time": {
                "modified_after_time": "2026-02-01T00:00:00Z",
                "modified_before_time": "2026-01-01T00:00:00Z",
            },
        }
        for field, params in cases.items():
            response = await clear(client, ingestion_id, **params)
            assert response.status_code == 400, response.text
            violations = response.json()["details"][0]["field_violations"]
            assert [v["field"] for v in violations] == [field], violations
