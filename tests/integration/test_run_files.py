"""What a run does with the files it finds: formats, unreadable and empty files, retries, odd keys, limits.

Everything goes through the real parts (HTTP → control → tracker → executor with Spark and Iceberg) on local
directories. Parquet, Avro and ORC inputs are written by the executor's own Spark (same JVM) through
`INSERT OVERWRITE DIRECTORY`, so the tests need no extra Python packages.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

GARBAGE = b"this is not a parquet file\n" * 40


# --- helpers ------------------------------------------------------------------------------------------------


def uid() -> str:
    return uuid.uuid4().hex[:8]


def new_table(prefix: str) -> str:
    return f"itest.{prefix}_{uid()}"


def csv_text(ids: range) -> str:
    return "id,name\n" + "".join(f"{i},user-{i}\n" for i in ids)


def json_text(ids: range) -> str:
    return "".join(f'{{"id": {i}, "name": "user-{i}"}}\n' for i in ids)


def write(path: Path, content: str | bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


async def spark_write(stack: InProcessStack, fmt: str, select: str, target: Path, scratch: Path) -> Path:
    """Write the rows of `select` as one `fmt` file at `target`, with the executor's Spark."""
    out = scratch / f"spark-out-{uid()}"
    await stack.sql(f"INSERT OVERWRITE DIRECTORY '{out}' USING {fmt} SELECT /*+ REPARTITION(1) */ * FROM ({select})")
    parts = [p for p in out.iterdir() if p.name.startswith("part-")]
    assert len(parts) == 1, sorted(p.name for p in out.iterdir())
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(parts[0], target)
    shutil.rmtree(out)
    return target


async def write_rows(stack: InProcessStack, fmt: str, ids: range, target: Path, scratch: Path) -> Path:
    """A file of `fmt` holding rows (id, name) for `ids` (text: one line `user-<id>` per id)."""
    if fmt == "csv":
        return write(target, csv_text(ids))
    if fmt == "json":
        return write(target, json_text(ids))
    if fmt == "text":
        return write(target, "".join(f"user-{i}\n" for i in ids))
    select = f"SELECT id, concat('user-', id) AS name FROM range({ids.start}, {ids.stop})"
    return await spark_write(stack, fmt, select, target, scratch)


async def create_ingestion(
    client: httpx.AsyncClient,
    source: Path | str,
    table: str,
    fmt: str,
    *,
    pattern: str = "",
    options: dict[str, str] | None = None,
    **extra: Any,
) -> str:
    ingestion_id = f"files-{uid()}"
    uri = source if isinstance(source, str) else source.as_uri() + "/"
    if options is None:
        options = {"header": "true"} if fmt == "csv" else {}
    body = {
        "ingestion_id": ingestion_id,
        "name": f"{fmt} files",
        "source": {"uri": uri, "format": fmt, "options": options, "pattern": pattern},
        "destination": {"table": table},
        **extra,
    }
    response = await client.post("/api/v1/ingestions", json=body)
    assert response.status_code == 201, response.text
    return ingestion_id


async def run_once(stack: InProcessStack, client: httpx.AsyncClient, ingestion_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
    assert response.status_code == 202, response.text
    return await stack.wait_for_run(response.json()["run_id"])


async def file_records(client: httpx.AsyncClient, ingestion_id: str, status: str = "") -> list[dict[str, Any]]:
    """Every processed-file record of the ingestion (all pages), optionally of one status."""
    records: list[dict[str, Any]] = []
    token = ""
    while True:
        params = {"page_size": "100"}
        if status:
            params["status"] = status
        if token:
            params["page_token"] = token
        response = await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        records += body.get("processed_files", [])
        token = body.get("next_page_token", "")
        if not token:
            return records


def by_key(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    keyed = {r["key"]: r for r in records}
    assert len(keyed) == len(records), records
    return keyed


def counts(run: dict[str, Any]) -> tuple[Any, ...]:
    """(status, discovered, processed, failed, skipped, rows_written) of a run."""
    return (
        run["status"],
        run.get("files_discovered", 0),
        run.get("files_processed", 0),
        run.get("files_failed", 0),
        run.get("files_skipped", 0),
        run.get("rows_written", 0),
    )


async def count_rows(stack: InProcessStack, table: str) -> int:
    rows = await stack.sql(f"SELECT count(*) FROM {table}")
    return int(rows[0][0] or 0)


# --- 1. every format ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "avro", "orc", "text"])
async def test_each_format_loads_every_row(loading_stack: InProcessStack, tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "src"
    await write_rows(loading_stack, fmt, range(0, 3), source / f"part-0.{fmt}", tmp_path)
    await write_rows(loading_stack, fmt, range(3, 7), source / f"part-1.{fmt}", tmp_path)
    table = new_table(f"fmt_{fmt}")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, fmt)
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run) == ("SUCCESS", 2, 2, 0, 0, 7), run
        assert run["snapshot_id"] and run["batch_key"] == f"{ingestion_id}:1"
        records = await file_records(client, ingestion_id)
        assert sorted((r["key"], r["status"]) for r in records) == [
            (f"part-0.{fmt}", "PROCESSED"),
            (f"part-1.{fmt}", "PROCESSED"),
        ]

    if fmt == "text":
        rows = await loading_stack.sql(f"SELECT count(*), count(DISTINCT value), min(value), max(value) FROM {table}")
        assert rows == [["7", "7", "user-0", "user-6"]]
    else:
        rows = await loading_stack.sql(
            f"SELECT count(*), count(DISTINCT id), min(CAST(id AS INT)), max(CAST(id AS INT)),"
            f" count(DISTINCT name) FROM {table}"
        )
        assert rows == [["7", "7", "0", "6", "7"]]


# --- 2. a corrupt file among good ones -----------------------------------------------------------------------


async def test_corrupt_file_is_isolated_and_the_good_files_load(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    good = {
        "a.parquet": range(0, 3),
        "b.parquet": range(3, 7),
        "d.parquet": range(7, 12),
    }
    for name, ids in good.items():
        await write_rows(loading_stack, "parquet", ids, source / name, tmp_path)
    write(source / "c.parquet", GARBAGE)  # sorts, and is listed, between the good ones
    good_bytes = sum((source / name).stat().st_size for name in good)
    table = new_table("corrupt")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "parquet")
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run) == ("PARTIAL_SUCCESS", 4, 3, 1, 0, 12), run
        assert run["bytes_processed"] == good_bytes
        assert run["snapshot_id"]
        assert "1 file(s) could not be read" in run["error"]

        records = by_key(await file_records(client, ingestion_id))
        bad = records["c.parquet"]
        assert bad["status"] == "FAILED"
        assert bad["error"].strip()
        assert bad["attempts"] == 1
        assert "snapshot_id" not in bad
        for name in good:
            assert records[name]["status"] == "PROCESSED", records[name]
            assert records[name].get("attempts", 0) == 0
            assert records[name]["snapshot_id"] == run["snapshot_id"]
            assert records[name]["run_id"] == run["run_id"]
        assert [r["key"] for r in await file_records(client, ingestion_id, "FAILED")] == ["c.parquet"]
        assert sorted(r["key"] for r in await file_records(client, ingestion_id, "PROCESSED")) == sorted(good)

    assert await loading_stack.sql(f"SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {table}") == [
        ["12", "12", "0", "11"]
    ]


async def test_corrupt_file_error_says_what_is_wrong(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source / "x.parquet", GARBAGE)
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, new_table("errmsg"), "parquet")
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run)[:4] == ("FAILED", 1, 0, 1), run
        (record,) = await file_records(client, ingestion_id)
    error = record["error"]
    assert not error.startswith("An error occurred while calling"), error
    assert "x.parquet" in error or "footer" in error.lower() or "magic" in error.lower(), error


# --- 3. retries, skipping, replacing ------------------------------------------------------------------------


async def test_failed_file_is_retried_until_max_retries_then_left_out_and_a_replacement_loads(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    start = time.time() - 1000
    await write_rows(loading_stack, "parquet", range(0, 4), source / "good.parquet", tmp_path)
    os.utime(source / "good.parquet", (start, start))
    write(source / "x.parquet", GARBAGE, mtime=start + 10)
    bad_etag_size = (source / "x.parquet").stat().st_size
    table = new_table("retry")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "parquet", max_retries=2)

        first = await run_once(loading_stack, client, ingestion_id)
        assert counts(first) == ("PARTIAL_SUCCESS", 2, 1, 1, 0, 4), first
        bad = by_key(await file_records(client, ingestion_id))["x.parquet"]
        assert (bad["status"], bad["attempts"]) == ("FAILED", 1)
        bad_etag = bad["etag"]

        # Retries 1 and 2: only the bad file is tried, and it fails alone → the run is FAILED.
        for attempts in (2, 3):
            retry = await run_once(loading_stack, client, ingestion_id)
            assert counts(retry) == ("FAILED", 2, 0, 1, 0, 0), retry
            assert retry["batch_key"], retry
            assert "snapshot_id" not in retry
            bad = by_key(await file_records(client, ingestion_id))["x.parquet"]
            assert bad["attempts"] == attempts, bad
            assert bad["run_id"] == retry["run_id"]
            assert bad["error"].strip()
            if attempts < 3:
                assert bad["status"] == "FAILED"
        # attempts = max_retries + 1: the file is SKIPPED and never retried.
        assert bad["status"] in ("FAILED", "SKIPPED"), bad

        left_out = await run_once(loading_stack, client, ingestion_id)
        assert counts(left_out)[:4] == ("SUCCESS", 2, 0, 0), left_out
        assert left_out["batch_key"] == "" and "snapshot_id" not in left_out
        records = by_key(await file_records(client, ingestion_id))
        assert records["x.parquet"]["attempts"] == 3
        assert records["x.parquet"]["run_id"] != left_out["run_id"]
        assert records["good.parquet"]["status"] == "PROCESSED"
        assert await count_rows(loading_stack, table) == 4

        # The same key with new content (new size and mtime → new etag) is a new file and loads.
        (source / "x.parquet").unlink()
        await write_rows(loading_stack, "parquet", range(100, 106), source / "x.parquet", tmp_path)
        os.utime(source / "x.parquet", (start + 20, start + 20))
        assert (source / "x.parquet").stat().st_size != bad_etag_size
        replaced = await run_once(loading_stack, client, ingestion_id)
        assert counts(replaced)[:4] == ("SUCCESS", 2, 1, 0), replaced
        assert replaced["rows_written"] == 6
        versions = [r for r in await file_records(client, ingestion_id) if r["key"] == "x.parquet"]
        assert len(versions) == 2, versions
        old = next(r for r in versions if r["etag"] == bad_etag)
        new = next(r for r in versions if r["etag"] != bad_etag)
        assert old["attempts"] == 3 and old["status"] in ("FAILED", "SKIPPED")
        assert (new["status"], new.get("attempts", 0), new["run_id"]) == ("PROCESSED", 0, replaced["run_id"])
        assert new["snapshot_id"] == replaced["snapshot_id"]

    assert await loading_stack.sql(f"SELECT count(*), min(id), max(id) FROM {table}") == [["10", "0", "105"]]


async def test_file_is_skipped_after_max_retries_plus_one_attempts(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write(source / "x.parquet", GARBAGE)
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, new_table("skip"), "parquet", max_retries=2)
        for attempts in (1, 2, 3):
            run = await run_once(loading_stack, client, ingestion_id)
            assert counts(run) == ("FAILED", 1, 0, 1, 0, 0), run
            (record,) = await file_records(client, ingestion_id)
            assert record["attempts"] == attempts
        assert record["status"] == "SKIPPED", record  # attempts == max_retries + 1

        later = await run_once(loading_stack, client, ingestion_id)
        assert counts(later) == ("SUCCESS", 1, 0, 0, 1, 0), later
        assert later["batch_key"] == ""
        skipped = await file_records(client, ingestion_id, "SKIPPED")
        assert [(r["key"], r["attempts"]) for r in skipped] == [("x.parquet", 3)]
        assert skipped[0]["error"].strip()


# --- 4. empty files -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_empty_file_among_others_is_processed_with_zero_rows(
    loading_stack: InProcessStack, tmp_path: Path, fmt: str
) -> None:
    source = tmp_path / "src"
    await write_rows(loading_stack, fmt, range(0, 3), source / f"a.{fmt}", tmp_path)
    await write_rows(loading_stack, fmt, range(3, 5), source / f"c.{fmt}", tmp_path)
    write(source / f"b-empty.{fmt}", b"")
    table = new_table(f"empty_{fmt}")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, fmt)
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run) == ("SUCCESS", 3, 3, 0, 0, 5), run
        records = by_key(await file_records(client, ingestion_id))
        empty = records[f"b-empty.{fmt}"]
        assert (empty["status"], empty.get("size", 0), empty.get("attempts", 0)) == ("PROCESSED", 0, 0)
        assert empty["snapshot_id"] == run["snapshot_id"]
    assert await count_rows(loading_stack, table) == 5


async def test_empty_json_file_alone_in_the_first_run_is_processed_or_fails_clearly(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write(source / "empty.json", b"")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, new_table("empty_first"), "json")
        run = await run_once(loading_stack, client, ingestion_id)
        (record,) = await file_records(client, ingestion_id)
    if run["status"] == "SUCCESS":
        assert counts(run) == ("SUCCESS", 1, 1, 0, 0, 0), run
        assert record["status"] == "PROCESSED"
    else:
        assert counts(run)[:4] == ("FAILED", 1, 0, 1), run
        assert "PARSE_SYNTAX_ERROR" not in record["error"], record
        assert any(word in record["error"].lower() for word in ("empty", "no column", "schema")), record


@pytest.mark.parametrize("fmt", ["csv", "json"])
async def test_empty_file_alone_in_a_later_run_is_processed_with_zero_rows(
    loading_stack: InProcessStack, tmp_path: Path, fmt: str
) -> None:
    source = tmp_path / "src"
    await write_rows(loading_stack, fmt, range(0, 2), source / f"a.{fmt}", tmp_path)
    table = new_table(f"empty_later_{fmt}")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, fmt)
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 1, 1, 0, 0, 2)
        write(source / f"empty.{fmt}", b"")
        run = await run_once(loading_stack, client, ingestion_id)
        record = by_key(await file_records(client, ingestion_id))[f"empty.{fmt}"]
        assert (record["status"], record.get("attempts", 0), record.get("error", "")) == ("PROCESSED", 0, ""), record
        assert counts(run) == ("SUCCESS", 2, 1, 0, 0, 0), run
    assert await count_rows(loading_stack, table) == 2


# --- 5. odd keys and patterns ----------------------------------------------------------------------------------

ODD_KEYS = [
    "with space.csv",
    "données été/ünï cødé.csv",
    "[1].csv",
    "a{b}.csv",
    "q?.csv",
    "st*r.csv",
    "100%.csv",
    "a,b;c=d+e&f#g.csv",
]


async def test_keys_with_spaces_unicode_and_glob_characters_load(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    for n, key in enumerate(ODD_KEYS):
        write(source / key, csv_text(range(n * 10, n * 10 + n + 1)))  # key n holds n + 1 rows
    # "[1].csv" as a glob would match "1.csv": this file must not be read in its place (nor twice).
    write(source / "1.csv", csv_text(range(1000, 1005)))
    expected_rows = sum(n + 1 for n in range(len(ODD_KEYS))) + 5
    table = new_table("keys")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv")
        run = await run_once(loading_stack, client, ingestion_id)
        files = len(ODD_KEYS) + 1
        assert counts(run) == ("SUCCESS", files, files, 0, 0, expected_rows), run
        records = await file_records(client, ingestion_id)
        assert sorted(r["key"] for r in records) == sorted([*ODD_KEYS, "1.csv"])
        assert {r["status"] for r in records} == {"PROCESSED"}
    rows = await loading_stack.sql(f"SELECT count(*), count(DISTINCT id) FROM {table}")
    assert rows == [[str(expected_rows), str(expected_rows)]]
    # Each key's own rows, exactly once.
    per_key = await loading_stack.sql(f"SELECT CAST(id AS INT) DIV 10, count(*) FROM {table} GROUP BY 1 ORDER BY 1")
    assert per_key == [[str(n), str(n + 1)] for n in range(len(ODD_KEYS))] + [["100", "5"]]


async def test_source_directory_with_spaces_given_unencoded(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "my dir"
    write(source / "a b.csv", csv_text(range(0, 3)))
    table = new_table("rawdir")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, f"file://{source}/", table, "csv")
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run) == ("SUCCESS", 1, 1, 0, 0, 3), run
    assert await count_rows(loading_stack, table) == 3


async def test_source_directory_with_spaces_and_unicode_given_as_encoded_file_uri(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "my dir été"
    write(source / "a.csv", csv_text(range(0, 3)))
    write(source / "b c.csv", csv_text(range(3, 5)))
    table = new_table("encdir")
    async with loading_stack.http(loading_stack.admin_token) as client:
        uri = source.as_uri() + "/"
        assert "%20" in uri
        ingestion_id = await create_ingestion(client, uri, table, "csv")
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run) == ("SUCCESS", 2, 2, 0, 0, 5), (run, await file_records(client, ingestion_id))
    assert await count_rows(loading_stack, table) == 5


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*.csv", ["a.csv", "b.csv"]),
        ("**/*.csv", ["a.csv", "b.csv", "sub/c.csv", "sub/deeper/d.csv"]),
        ("sub/*.csv", ["sub/c.csv"]),
        ("[ab].csv", ["a.csv", "b.csv"]),
    ],
)
async def test_pattern_filters_the_listing(
    loading_stack: InProcessStack, tmp_path: Path, pattern: str, expected: list[str]
) -> None:
    source = tmp_path / "src"
    all_files = {
        "a.csv": range(0, 1),
        "b.csv": range(10, 12),
        "sub/c.csv": range(20, 23),
        "sub/deeper/d.csv": range(30, 34),
        "notes.txt": range(40, 45),  # CSV content, but not matched by any pattern
        "sub/e.json": range(50, 56),
    }
    for key, ids in all_files.items():
        write(source / key, csv_text(ids))
    table = new_table("pattern")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv", pattern=pattern)
        run = await run_once(loading_stack, client, ingestion_id)
        rows = sum(len(all_files[k]) for k in expected)
        assert counts(run) == ("SUCCESS", len(expected), len(expected), 0, 0, rows), run
        assert sorted(r["key"] for r in await file_records(client, ingestion_id)) == expected
    assert await count_rows(loading_stack, table) == rows


# --- 6. limits per run -------------------------------------------------------------------------------------------


async def test_max_files_per_run_takes_the_oldest_files_first(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    start = time.time() - 1000
    # Name order is the reverse of modification order: the run must follow the modification time.
    oldest_first = ["e.csv", "d.csv", "c.csv", "b.csv", "a.csv"]
    for n, name in enumerate(oldest_first):
        write(source / name, csv_text(range(n * 10, n * 10 + n + 1)), mtime=start + n * 10)
    table = new_table("maxfiles")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv", max_files_per_run=2)
        batches = []
        for expected_keys, expected_rows in ((["e.csv", "d.csv"], 3), (["c.csv", "b.csv"], 7), (["a.csv"], 5)):
            run = await run_once(loading_stack, client, ingestion_id)
            assert counts(run) == ("SUCCESS", 5, len(expected_keys), 0, 0, expected_rows), run
            loaded = [r["key"] for r in await file_records(client, ingestion_id) if r["run_id"] == run["run_id"]]
            assert sorted(loaded) == sorted(expected_keys)
            batches.append(run["batch_key"])
        assert batches == [f"{ingestion_id}:{n}" for n in (1, 2, 3)]
        done = await run_once(loading_stack, client, ingestion_id)
        assert counts(done) == ("SUCCESS", 5, 0, 0, 0, 0), done
        assert done["batch_key"] == ""
    assert await count_rows(loading_stack, table) == 15


async def test_max_bytes_per_run_limits_each_batch_and_takes_a_large_file_alone(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    start = time.time() - 1000
    small = csv_text(range(100, 110))  # every small file has the same size
    files = {
        "s1.csv": small,
        "s2.csv": small.replace("1", "2"),
        "big.csv": csv_text(range(1000, 1200)),
        "s3.csv": small.replace("1", "3"),
        "s4.csv": small.replace("1", "4"),
    }
    for n, (name, text) in enumerate(files.items()):
        write(source / name, text, mtime=start + n * 10)
    small_size = (source / "s1.csv").stat().st_size
    assert {(source / n).stat().st_size for n in files if n.startswith("s")} == {small_size}
    limit = 2 * small_size
    assert (source / "big.csv").stat().st_size > limit
    table = new_table("maxbytes")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv", max_bytes_per_run=limit)
        for expected_keys, expected_rows in (
            (["s1.csv", "s2.csv"], 20),
            (["big.csv"], 200),
            (["s3.csv", "s4.csv"], 20),
        ):
            run = await run_once(loading_stack, client, ingestion_id)
            assert counts(run) == ("SUCCESS", 5, len(expected_keys), 0, 0, expected_rows), run
            expected_bytes = sum((source / k).stat().st_size for k in expected_keys)
            assert run["bytes_processed"] == expected_bytes
            loaded = [r["key"] for r in await file_records(client, ingestion_id) if r["run_id"] == run["run_id"]]
            assert sorted(loaded) == sorted(expected_keys)
        done = await run_once(loading_stack, client, ingestion_id)
        assert counts(done) == ("SUCCESS", 5, 0, 0, 0, 0), done
    assert await count_rows(loading_stack, table) == 240


# --- 7. malformed rows -------------------------------------------------------------------------------------------


async def test_invalid_json_line_is_kept_as_a_corrupt_record(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    bad_line = '{"id": 3, "name": '
    lines = ['{"id": 1, "name": "a"}', '{"id": 2, "name": "b"}', bad_line, '{"id": 4, "name": "d"}', '{"id": 5}']
    write(source / "a.json", "\n".join(lines) + "\n")
    table = new_table("badjson")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "json")
        run = await run_once(loading_stack, client, ingestion_id)
        # No row is dropped: the invalid line is loaded, whole, into Spark's _corrupt_record column.
        assert counts(run) == ("SUCCESS", 1, 1, 0, 0, 5), run
        (record,) = await file_records(client, ingestion_id)
        assert record["status"] == "PROCESSED"
    assert await count_rows(loading_stack, table) == len(lines)
    rows = await loading_stack.sql(f"SELECT CAST(id AS INT), name, _corrupt_record FROM {table} ORDER BY 1 NULLS FIRST")
    assert rows == [
        [None, None, bad_line],
        ["1", "a", None],
        ["2", "b", None],
        ["4", "d", None],
        ["5", None, None],
    ]


async def test_csv_row_with_too_many_fields_keeps_its_raw_line(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source / "a.csv", "id,name\n1,a\n2,b,extra,more\n3,c\n4,d\n")
    table = new_table("badcsv")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv")
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run) == ("SUCCESS", 1, 1, 0, 0, 4), run
        (record,) = await file_records(client, ingestion_id)
        assert (record["status"], record.get("error", "")) == ("PROCESSED", "")
    # Every line is a row; the malformed one keeps its raw text in _corrupt_record, the others have null there.
    assert await loading_stack.sql(f"SELECT CAST(id AS INT), name, _corrupt_record FROM {table} ORDER BY 1") == [
        ["1", "a", None],
        ["2", "b", "2,b,extra,more"],
        ["3", "c", None],
        ["4", "d", None],
    ]


async def test_invalid_json_line_in_a_later_batch_drops_no_row_silently(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write(source / "a.json", json_text(range(1, 3)))
    table = new_table("badjson_later")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "json")
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 1, 1, 0, 0, 2)
        write(source / "b.json", '{"id": 10, "name": "x"}\n{"id": 11, "name": \n')
        run = await run_once(loading_stack, client, ingestion_id)
        record = by_key(await file_records(client, ingestion_id))["b.json"]
        loaded = await count_rows(loading_stack, table)
        if record["status"] == "PROCESSED":
            assert loaded == 2 + 2, run
        else:
            assert record["status"] == "FAILED" and record["error"].strip(), record
            assert run["files_failed"] == 1 and run["status"] in ("FAILED", "PARTIAL_SUCCESS"), run
            assert loaded == 2


async def test_invalid_json_line_in_a_later_batch_does_not_fail_the_good_files(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write(source / "a.json", json_text(range(1, 3)))
    table = new_table("badjson_good")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "json")
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 1, 1, 0, 0, 2)
        write(source / "b.json", '{"id": 10, "name": "x"}\n{"id": 11, "name": \n')
        write(source / "c.json", json_text(range(20, 23)))
        run = await run_once(loading_stack, client, ingestion_id)
        records = by_key(await file_records(client, ingestion_id))
        assert records["c.json"]["status"] == "PROCESSED", (run, records["c.json"])
        assert run["status"] in ("SUCCESS", "PARTIAL_SUCCESS"), run
    rows = await loading_stack.sql(f"SELECT count(*) FROM {table} WHERE CAST(id AS INT) >= 20")
    assert rows == [["3"]]


async def test_clean_json_loads_after_a_batch_with_an_invalid_line(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    write(source / "a.json", '{"id": 1, "name": "a"}\n{"id": 2, "name": \n')
    table = new_table("badjson_then_clean")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "json")
        assert counts(await run_once(loading_stack, client, ingestion_id)) == ("SUCCESS", 1, 1, 0, 0, 2)
        write(source / "b.json", json_text(range(10, 13)))
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run) == ("SUCCESS", 2, 1, 0, 0, 3), (run, await file_records(client, ingestion_id))
    assert await count_rows(loading_stack, table) == 5


# --- 8. one active run per ingestion -------------------------------------------------------------------------------


async def test_second_run_request_conflicts_until_the_first_run_ends(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    for n in range(3):
        write(source / f"part-{n}.csv", csv_text(range(n * 10, n * 10 + 10)))
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, new_table("conflict"), "csv")
        url = f"/api/v1/ingestions/{ingestion_id}/run"
        responses = await asyncio.gather(client.post(url), client.post(url))
        assert sorted(r.status_code for r in responses) == [202, 409], [r.text for r in responses]
        accepted = next(r for r in responses if r.status_code == 202).json()
        first_id = accepted["run_id"]
        conflict = next(r for r in responses if r.status_code == 409).json()
        assert first_id in conflict["message"], conflict
        assert "already has an active run" in conflict["message"]

        conflicts = 1
        deadline = asyncio.get_running_loop().time() + 240
        while True:
            response = await client.post(url)
            if response.status_code == 202:
                break
            assert response.status_code == 409, response.text
            assert first_id in response.json()["message"], response.text
            conflicts += 1
            assert asyncio.get_running_loop().time() < deadline, "the first run never ended"
            await asyncio.sleep(0.2)
        # Accepted again only once the first run has ended.
        first = (await client.get(f"/api/v1/runs/{first_id}")).json()
        assert first["status"] == "SUCCESS", first
        assert (first["files_processed"], first["rows_written"]) == (3, 30)
        second = await loading_stack.wait_for_run(response.json()["run_id"])
        assert second["run_id"] != first_id
        assert counts(second) == ("SUCCESS", 3, 0, 0, 0, 0), second
        assert conflicts >= 1
