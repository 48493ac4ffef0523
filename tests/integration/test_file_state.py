"""Per-file state through the real services: when each file was discovered, taken, processed and committed,
by which run and snapshot; filtered and paginated."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_run_files import create_ingestion, csv_text, new_table, run_once, write
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def records(client: httpx.AsyncClient, ingestion_id: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json().get("processed_files", [])
    return found


async def test_each_file_records_when_it_was_discovered_taken_processed_and_committed(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write(source / "day1/a.csv", csv_text(range(2)), mtime=T0)
    write(source / "day2/b.csv", csv_text(range(2, 5)), mtime=T0 + 86_400)
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, new_table("state"), "csv", max_files_per_run=1)
        first = await run_once(loading_stack, client, ingestion_id)  # takes a.csv; b.csv waits
        second = await run_once(loading_stack, client, ingestion_id)  # takes b.csv
        [a] = await records(client, ingestion_id, run_id=first["run_id"])
        [b] = await records(client, ingestion_id, run_id=second["run_id"])

        assert (a["key"], b["key"]) == ("day1/a.csv", "day2/b.csv")
        for record, run in ((a, first), (b, second)):
            assert record["status"] == "PROCESSED" and record["snapshot_id"] == run["snapshot_id"]
            assert at(run["start_time"]) <= at(record["claim_time"]) <= at(record["commit_time"])
            assert at(record["commit_time"]) <= at(record["process_time"]) <= at(run["end_time"])
        # b.csv was found by the first run's listing and waited: its discovery is older than its run.
        assert at(b["discover_time"]) <= at(first["end_time"]) < at(second["start_time"]) <= at(b["claim_time"])
        assert at(first["start_time"]) <= at(a["discover_time"]) <= at(a["claim_time"])

        assert [r["key"] for r in await records(client, ingestion_id, key_prefix="day2/")] == ["day2/b.csv"]
        assert [r["key"] for r in await records(client, ingestion_id, modified_before_time="2026-01-01T12:00:00Z")] == [
            "day1/a.csv"
        ]
        assert [r["key"] for r in await records(client, ingestion_id, status="PROCESSED", key_prefix="day1")] == [
            "day1/a.csv"
        ]
        assert await records(client, ingestion_id, status="FAILED") == []

        page = await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files", params={"page_size": 1})
        assert [r["key"] for r in page.json()["processed_files"]] == ["day1/a.csv"]
        rest = await client.get(
            f"/api/v1/ingestions/{ingestion_id}/processed-files",
            params={"page_size": 1, "page_token": page.json()["next_page_token"]},
        )
        assert [r["key"] for r in rest.json()["processed_files"]] == ["day2/b.csv"]
        assert "next_page_token" not in rest.json() or not rest.json()["next_page_token"]

        inverted = await client.get(
            f"/api/v1/ingestions/{ingestion_id}/processed-files",
            params={"modified_after_time": "2026-02-01T00:00:00Z", "modified_before_time": "2026-01-01T00:00:00Z"},
        )
        assert inverted.status_code == 400 and "modified_before_time" in inverted.text
        bad_status = await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files", params={"status": "DONE"})
        assert bad_status.status_code == 400 and "status" in bad_status.text
