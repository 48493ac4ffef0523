"""source.listing.mode = incremental through the real stack: runs list only the keys after the greatest one
tracked; the periodic full listing finds a file that landed out of order; a clear makes the next listing full,
so the cleared files load again. files_discovered tells how much a run listed."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.runs import create_ingestion, run_once, write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


def counts(run: dict[str, Any]) -> tuple[str, int, int]:
    return run["status"], run["files_discovered"], run["files_processed"]


async def test_incremental_listing_loads_new_files_and_the_backstop_finds_late_ones(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "events"
    for n in (10, 20, 30):
        write_csv(source, f"part-{n}.csv", rows=1, start=n)
    table = f"itest.incremental_{uuid.uuid4().hex[:6]}"
    listing = {"mode": "incremental", "full_listing_every_runs": 3}
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table)
        patched = await client.patch(f"/api/v1/ingestions/{ingestion_id}", json={"source": {"listing": listing}})
        assert patched.status_code == 200, patched.text
        assert patched.json()["source"]["listing"] == {**listing, "full_listing_interval_seconds": 0}

        # Never listed whole before: the first listing is full.
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 3, 3)

        write_csv(source, "part-40.csv", rows=1, start=40)  # in order
        write_csv(source, "part-15.csv", rows=1, start=15)  # out of order: sorts before part-30
        # Incremental: only the keys after part-30 are listed.
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 1, 1)
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 0, 0)
        # Every third listing is full: it finds part-15.
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 5, 1)
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 0, 0)

        # Clearing records (here of a key far before the position) makes the next listing full.
        cleared = await client.delete(
            f"/api/v1/ingestions/{ingestion_id}/processed-files", params={"key_prefix": "part-2"}
        )
        assert cleared.json()["files_cleared"] == 1, cleared.text
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 5, 1)
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 0, 0)

        files = (await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files")).json()["processed_files"]
        assert sorted(f["key"] for f in files) == [f"part-{n}.csv" for n in (10, 15, 20, 30, 40)]

    # part-20 twice (cleared with the table kept), every other file once.
    rows = await loading_stack.sql(f"SELECT id, count(*) FROM {table} GROUP BY id ORDER BY id")
    assert rows == [["10", "1"], ["15", "1"], ["20", "2"], ["30", "1"], ["40", "1"]]


async def test_a_clear_of_everything_finds_every_file_again(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "all"
    for n in range(3):
        write_csv(source, f"f-{n}.csv", rows=1, start=n)
    table = f"itest.incremental_all_{uuid.uuid4().hex[:6]}"
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table)
        listing = {"source": {"listing": {"mode": "incremental"}}}
        assert (await client.patch(f"/api/v1/ingestions/{ingestion_id}", json=listing)).status_code == 200
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 3, 3)
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 0, 0)
        cleared = await client.delete(f"/api/v1/ingestions/{ingestion_id}/processed-files")
        assert cleared.json()["files_cleared"] == 3
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 3, 3)
