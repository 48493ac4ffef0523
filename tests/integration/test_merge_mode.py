"""write_mode "merge": upserts by key across runs, the latest row per key within a batch, refusals.

Through the whole stack on local CSV files; the table is read back with Spark SQL.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.test_run_files import counts, create_ingestion, file_records, new_table, run_once, write
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

OPTIONS = {"header": "true", "inferSchema": "true"}


async def merge_ingestion(client: httpx.AsyncClient, source: Path, table: str, order_by: str = "") -> str:
    """A CSV ingestion (typed columns) that merges into table by id."""
    destination = {"table": table, "write_mode": "merge", "merge_keys": ["id"], "merge_order_by": order_by}
    return await create_ingestion(client, source, table, "csv", options=OPTIONS, destination=destination)


async def table_rows(stack: InProcessStack, table: str) -> list[list[str | None]]:
    return await stack.sql(f"SELECT id, name, version FROM {table} ORDER BY id")


async def snapshot_count(stack: InProcessStack, table: str) -> int:
    return int((await stack.sql(f"SELECT count(*) FROM {table}.snapshots"))[0][0] or 0)


async def test_merge_updates_and_inserts_across_runs(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    table = new_table("merge")
    write(source / "a.csv", "id,name,version\n1,ann,1\n2,bob,1\n3,cy,1\n")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await merge_ingestion(client, source, table)
        run1 = await run_once(loading_stack, client, ingestion_id)
        assert counts(run1) == ("SUCCESS", 1, 1, 0, 0, 3), run1
        write(source / "b.csv", "id,name,version\n2,bobby,2\n4,di,1\n")
        run2 = await run_once(loading_stack, client, ingestion_id)
        assert counts(run2) == ("SUCCESS", 2, 1, 0, 0, 2), run2
        write(source / "c.csv", "id,name,version\n4,diana,2\n")
        run3 = await run_once(loading_stack, client, ingestion_id)
        assert counts(run3) == ("SUCCESS", 3, 1, 0, 0, 1), run3
    assert await table_rows(loading_stack, table) == [
        ["1", "ann", "1"],
        ["2", "bobby", "2"],
        ["3", "cy", "1"],
        ["4", "diana", "2"],
    ]
    duplicates = await loading_stack.sql(
        f"SELECT count(*) FROM (SELECT id FROM {table} GROUP BY id HAVING count(*) > 1)"
    )
    assert duplicates == [["0"]]


async def test_latest_row_per_key_wins_within_and_across_batches(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    table = new_table("merge_latest")
    write(source / "a.csv", "id,name,version\n1,old,1\n1,newest,3\n1,middle,2\n2,bob,5\n")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await merge_ingestion(client, source, table, "version")
        run1 = await run_once(loading_stack, client, ingestion_id)
        assert counts(run1) == ("SUCCESS", 1, 1, 0, 0, 2), run1
        assert await table_rows(loading_stack, table) == [["1", "newest", "3"], ["2", "bob", "5"]]
        # A late file with an older version of key 2 must not undo the newer row; key 1 moves forward.
        write(source / "b.csv", "id,name,version\n2,stale,4\n1,newer,4\n")
        run2 = await run_once(loading_stack, client, ingestion_id)
        assert run2["status"] == "SUCCESS", run2
    assert await table_rows(loading_stack, table) == [["1", "newer", "4"], ["2", "bob", "5"]]


async def test_duplicate_keys_without_an_ordering_column_are_refused(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    table = new_table("merge_dupes")
    write(source / "a.csv", "id,name,version\n1,ann,1\n")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await merge_ingestion(client, source, table)
        assert (await run_once(loading_stack, client, ingestion_id))["status"] == "SUCCESS"
        before = await snapshot_count(loading_stack, table)
        write(source / "b.csv", "id,name,version\n7,x,1\n7,y,2\n8,z,1\n")
        run = await run_once(loading_stack, client, ingestion_id)
        assert run["status"] == "FAILED", run
        assert "1 row(s) repeat a key within this batch (e.g. id=7 (2 times))" in run["error"], run["error"]
        assert "destination.merge_order_by" in run["error"]
        assert [r["key"] for r in await file_records(client, ingestion_id, "FAILED")] == ["b.csv"]
    assert await snapshot_count(loading_stack, table) == before
    assert await table_rows(loading_stack, table) == [["1", "ann", "1"]]


async def test_rows_without_a_key_are_refused(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    table = new_table("merge_nullkey")
    write(source / "a.csv", "id,name,version\n1,ann,1\n,nobody,1\n")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await merge_ingestion(client, source, table, "version")
        run = await run_once(loading_stack, client, ingestion_id)
    assert run["status"] == "FAILED", run
    assert "1 row(s) have no value in a key column (id)" in run["error"], run["error"]
    assert await loading_stack.sql(f"SELECT count(*) FROM {table}") == [["0"]]
