"""Schemas through real runs: evolution modes, rescued data, explicit schemas and hints, metadata columns,
partitioning and table properties, widening and unsafe type changes.

Each test drives the whole stack (HTTP → control → tracker → executor with Spark and Iceberg) on local files
and then reads the table back with Spark SQL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_run_files import (
    count_rows,
    counts,
    create_ingestion,
    file_records,
    new_table,
    run_once,
    spark_write,
    write,
)
from tests.support.s3 import S3Server, running_s3_server
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

CSV_OPTIONS = {"header": "true", "inferSchema": "true"}


async def columns(stack: InProcessStack, table: str) -> dict[str, str]:
    """Column name → Spark SQL type of the table."""
    rows = await stack.sql(f"DESCRIBE TABLE {table}")
    described: dict[str, str] = {}
    for name, data_type, *_ in rows:
        if not name or name.startswith("#"):
            break  # the partitioning section follows the columns
        described[str(name)] = str(data_type)
    return described


async def schema_of(client: Any, ingestion_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/ingestions/{ingestion_id}/schema")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def two_runs(
    stack: InProcessStack, source: Path, first: str, second: str, **extra: Any
) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """Load `first` as a.csv in one run and `second` as b.csv in the next: (table, ingestion, run1, run2)."""
    table = new_table("evolve")
    write(source / "a.csv", first)
    async with stack.http(stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv", options=CSV_OPTIONS, **extra)
        run1 = await run_once(stack, client, ingestion_id)
        write(source / "b.csv", second)
        run2 = await run_once(stack, client, ingestion_id)
    return table, ingestion_id, run1, run2


# --- evolution modes --------------------------------------------------------------------------------------


async def test_add_new_columns_adds_the_column_with_every_value(loading_stack: InProcessStack, tmp_path: Path) -> None:
    table, ingestion_id, run1, run2 = await two_runs(
        loading_stack, tmp_path / "src", "id,name\n1,ann\n2,bob\n", "id,name,email\n3,cy,cy@example.com\n4,di,\n"
    )
    assert counts(run1) == ("SUCCESS", 1, 1, 0, 0, 2), run1
    assert counts(run2) == ("SUCCESS", 2, 1, 0, 0, 2), run2
    assert list(await columns(loading_stack, table)) == ["id", "name", "_corrupt_record", "_rescued_data", "email"]
    rows = await loading_stack.sql(f"SELECT id, name, email, _rescued_data FROM {table} ORDER BY id")
    assert rows == [
        ["1", "ann", None, None],
        ["2", "bob", None, None],
        ["3", "cy", "cy@example.com", None],
        ["4", "di", None, None],
    ]
    async with loading_stack.http(loading_stack.admin_token) as client:
        schema = await schema_of(client, ingestion_id)
    assert schema["origin"] == "table"
    assert {"name": "email", "type": "string"} in schema["columns"]
    assert {"name": "id", "type": "int"} in schema["columns"]


async def test_fail_on_new_columns_fails_the_run_and_writes_nothing(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    table, ingestion_id, run1, run2 = await two_runs(
        loading_stack,
        tmp_path / "src",
        "id,name\n1,ann\n",
        "id,name,email,phone\n2,bob,b@example.com,555\n",
        schema={"evolution_mode": "fail_on_new_columns"},
        max_retries=0,
    )
    assert run1["status"] == "SUCCESS", run1
    assert run2["status"] == "FAILED", run2
    assert "email, phone" in run2["error"] and "fail_on_new_columns" in run2["error"], run2["error"]
    assert await count_rows(loading_stack, table) == 1
    assert "email" not in await columns(loading_stack, table)
    snapshots = await loading_stack.sql(f"SELECT count(*) FROM {table}.snapshots")
    assert snapshots == [["1"]], "the failed run must not stage or commit anything"
    async with loading_stack.http(loading_stack.admin_token) as client:
        # A refusal by the configuration costs the file no attempt: even with max_retries 0 it is not SKIPPED.
        failed = await file_records(client, ingestion_id, "FAILED")
        assert [(r["key"], r.get("attempts", 0)) for r in failed] == [("b.csv", 0)], failed
        assert (await run_once(loading_stack, client, ingestion_id))["status"] == "FAILED"
        patched = await client.patch(
            f"/api/v1/ingestions/{ingestion_id}", json={"schema": {"evolution_mode": "add_new_columns"}}
        )
        assert patched.status_code == 200, patched.text
        run = await run_once(loading_stack, client, ingestion_id)
    assert counts(run) == ("SUCCESS", 2, 1, 0, 0, 1), run
    assert await loading_stack.sql(f"SELECT email, phone FROM {table} WHERE id = 2") == [["b@example.com", "555"]]


async def test_rescue_mode_keeps_unknown_columns_in_rescued_data(loading_stack: InProcessStack, tmp_path: Path) -> None:
    table, _, _, run2 = await two_runs(
        loading_stack,
        tmp_path / "src",
        "id,name\n1,ann\n",
        "id,name,email\n2,bob,b@example.com\n3,cy,\n",
        schema={"evolution_mode": "rescue"},
    )
    assert counts(run2) == ("SUCCESS", 2, 1, 0, 0, 2), run2
    assert "email" not in await columns(loading_stack, table)
    rows = await loading_stack.sql(f"SELECT id, name, _rescued_data FROM {table} WHERE id > 1 ORDER BY id")
    assert rows[0][:2] == ["2", "bob"] and rows[1] == ["3", "cy", None]
    rescued = json.loads(str(rows[0][2]))
    assert rescued["email"] == "b@example.com"
    assert rescued["_file_path"].startswith("file:///") and rescued["_file_path"].endswith("/src/b.csv")


async def test_mode_none_ignores_new_columns(loading_stack: InProcessStack, tmp_path: Path) -> None:
    table, _, _, run2 = await two_runs(
        loading_stack,
        tmp_path / "src",
        "id,name\n1,ann\n",
        "id,name,email\n2,bob,b@example.com\n",
        schema={"evolution_mode": "none"},
    )
    assert counts(run2) == ("SUCCESS", 2, 1, 0, 0, 1), run2
    assert "email" not in await columns(loading_stack, table)
    assert await loading_stack.sql(f"SELECT name, _rescued_data FROM {table} WHERE id = 2") == [["bob", None]]


# --- missing columns, wrong types, mixed files --------------------------------------------------------------


async def test_a_file_missing_a_column_loads_with_nulls(loading_stack: InProcessStack, tmp_path: Path) -> None:
    table, _, _, run2 = await two_runs(loading_stack, tmp_path / "src", "id,name\n1,ann\n", "id\n2\n3\n")
    assert counts(run2) == ("SUCCESS", 2, 1, 0, 0, 2), run2
    assert await loading_stack.sql(f"SELECT id, name FROM {table} ORDER BY id") == [
        ["1", "ann"],
        ["2", None],
        ["3", None],
    ]


async def test_values_of_the_wrong_type_are_rescued_not_lost(loading_stack: InProcessStack, tmp_path: Path) -> None:
    table, _, _, run2 = await two_runs(
        loading_stack,
        tmp_path / "src",
        "id,amount\n1,2.5\n",
        "id,amount\n2,n/a\n3,4.25\nabc,1.0\n",
    )
    assert counts(run2) == ("SUCCESS", 2, 1, 0, 0, 3), run2
    assert await columns(loading_stack, table) == {
        "id": "int",
        "amount": "double",
        "_corrupt_record": "string",
        "_rescued_data": "string",
    }
    rows = await loading_stack.sql(
        f"SELECT id, amount, _rescued_data FROM {table} WHERE _rescued_data IS NOT NULL ORDER BY amount NULLS FIRST"
    )
    assert [r[:2] for r in rows] == [["2", None], [None, "1.0"]], rows
    rescued = [json.loads(str(r[2])) for r in rows]
    assert [{k: v for k, v in r.items() if k != "_file_path"} for r in rescued] == [{"amount": "n/a"}, {"id": "abc"}]
    assert all(r["_file_path"].endswith("/src/b.csv") for r in rescued), rescued
    assert await loading_stack.sql(f"SELECT amount, _rescued_data FROM {table} WHERE id = 3") == [["4.25", None]]


async def test_one_batch_of_csv_files_with_different_headers(loading_stack: InProcessStack, tmp_path: Path) -> None:
    """Columns are matched by header name, not position, across the files of one batch."""
    source = tmp_path / "src"
    write(source / "a.csv", "id,name\n1,ann\n2,bob\n")
    write(source / "b.csv", "name,id,email\ncy,3,cy@example.com\n")
    write(source / "c.csv", "id,name\n4,di\n")
    table = new_table("mixed")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "csv", options=CSV_OPTIONS)
        run = await run_once(loading_stack, client, ingestion_id)
    assert counts(run) == ("SUCCESS", 3, 3, 0, 0, 4), run
    assert await loading_stack.sql(f"SELECT id, name, email FROM {table} ORDER BY id") == [
        ["1", "ann", None],
        ["2", "bob", None],
        ["3", "cy", "cy@example.com"],
        ["4", "di", None],
    ]


async def test_one_batch_of_json_files_with_different_fields(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source / "a.json", '{"id": 1, "name": "ann"}\n')
    write(source / "b.json", '{"id": 2, "tags": ["x", "y"], "score": 1.5}\n{"id": "bad", "name": "cy"}\n')
    table = new_table("mixed_json")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "json")
        run = await run_once(loading_stack, client, ingestion_id)
    assert counts(run) == ("SUCCESS", 2, 2, 0, 0, 3), run
    described = await columns(loading_stack, table)
    assert described["tags"] == "array<string>" and described["score"] == "double"
    rows = await loading_stack.sql(f"SELECT id, name, tags[1], score FROM {table} ORDER BY name NULLS FIRST")
    assert ["2", None, "y", "1.5"] in rows and ["1", "ann", None, None] in rows


async def test_json_values_of_another_shape_are_rescued(loading_stack: InProcessStack, tmp_path: Path) -> None:
    """An object where the table has a number, or text where it has an array: null in the column, the value
    kept in _rescued_data. An object in a string column is kept as its JSON text."""
    source = tmp_path / "src"
    write(source / "a.json", '{"id": 1, "tags": ["x"], "note": "plain", "qty": 3}\n')
    table = new_table("json_shape")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "json")
        assert (await run_once(loading_stack, client, ingestion_id))["status"] == "SUCCESS"
        write(source / "b.json", '{"id": 2, "tags": "solo", "note": {"k": 1}, "qty": {"n": 4}}\n')
        run = await run_once(loading_stack, client, ingestion_id)
    assert counts(run) == ("SUCCESS", 2, 1, 0, 0, 1), run
    rows = await loading_stack.sql(f"SELECT tags, note, qty, _rescued_data FROM {table} WHERE id = 2")
    assert rows[0][:3] == [None, '{"k":1}', None], rows
    rescued = json.loads(str(rows[0][3]))
    assert (rescued["tags"], json.loads(rescued["qty"])) == ("solo", {"n": 4}), rescued


@pytest.mark.parametrize("mode", ["add_new_columns", "fail_on_new_columns"])
async def test_json_object_that_gains_a_field(loading_stack: InProcessStack, tmp_path: Path, mode: str) -> None:
    source = tmp_path / "src"
    write(source / "a.json", '{"id": 1, "payload": {"a": 1}}\n')
    table = new_table("nested")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "json", schema={"evolution_mode": mode})
        assert (await run_once(loading_stack, client, ingestion_id))["status"] == "SUCCESS"
        write(source / "b.json", '{"id": 2, "payload": {"a": 2, "b": "new"}}\n')
        run = await run_once(loading_stack, client, ingestion_id)
    if mode == "add_new_columns":
        assert counts(run) == ("SUCCESS", 2, 1, 0, 0, 1), run
        assert (await columns(loading_stack, table))["payload"] == "struct<a:bigint,b:string>"
        assert await loading_stack.sql(f"SELECT payload.a, payload.b FROM {table} ORDER BY id") == [
            ["1", None],
            ["2", "new"],
        ]
    else:
        assert run["status"] == "FAILED", run
        assert "column 'payload': the files have nested fields the table does not" in run["error"], run["error"]
        assert await count_rows(loading_stack, table) == 1


@pytest.mark.parametrize(("sample_files", "amount_type"), [(1, "int"), (2, "double")])
async def test_inference_reads_only_the_sample(
    loading_stack: InProcessStack, tmp_path: Path, sample_files: int, amount_type: str
) -> None:
    """CSV types come from the first sample_files files; a value beyond them that does not fit is rescued."""
    source = tmp_path / "src"
    write(source / "a.csv", "id,amount\n1,2\n", mtime=1_700_000_000)
    write(source / "b.csv", "id,amount\n2,2.5\n", mtime=1_700_000_100)
    table = new_table("sample")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, source, table, "csv", options=CSV_OPTIONS, schema={"sample_files": sample_files}
        )
        run = await run_once(loading_stack, client, ingestion_id)
    assert counts(run) == ("SUCCESS", 2, 2, 0, 0, 2), run
    assert (await columns(loading_stack, table))["amount"] == amount_type
    rows = await loading_stack.sql(f"SELECT amount, _rescued_data FROM {table} WHERE id = 2")
    if amount_type == "int":
        assert rows[0][0] is None and json.loads(str(rows[0][1]))["amount"] == "2.5", rows
    else:
        assert rows == [["2.5", None]]


# --- explicit schema, hints, widening, unsafe changes ------------------------------------------------------


async def test_explicit_schema_and_hints_decide_the_types(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source / "a.csv", "id,amount,code,extra\n1,12.50,007,x\n2,oops,010,y\n")
    table = new_table("explicit")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client,
            source,
            table,
            "csv",
            options={"header": "true"},
            schema={"ddl": "id BIGINT, amount DECIMAL(10,2), code INT", "hints": {"code": "string"}},
        )
        assert (await schema_of(client, ingestion_id))["origin"] == "configured"
        run = await run_once(loading_stack, client, ingestion_id)
        assert counts(run) == ("SUCCESS", 1, 1, 0, 0, 2), run
        assert (await schema_of(client, ingestion_id))["origin"] == "table"
    described = await columns(loading_stack, table)
    assert (described["id"], described["amount"], described["code"]) == ("bigint", "decimal(10,2)", "string")
    assert "extra" in described  # add_new_columns: a file column beyond the explicit schema is added
    rows = await loading_stack.sql(f"SELECT id, amount, code, _rescued_data FROM {table} ORDER BY id")
    assert rows[0][:4] == ["1", "12.50", "007", None]
    assert rows[1][:3] == ["2", None, "010"]
    assert json.loads(str(rows[1][3]))["amount"] == "oops"


async def test_rows_the_csv_reader_rejects_end_as_text_cast_would(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    """Numbers and booleans are parsed by the CSV reader; the values it rejects but a cast takes (' 2', 'yes'),
    values nothing takes ('x', '5.0' for a BIGINT), and rows of the wrong length still end as when every value
    is read as text and cast."""
    source = tmp_path / "src"
    write(
        source / "a b.csv",
        "id,amount,ok,day,name\n"
        "1,2.5,true,2026-01-02,ann\n"
        " 2,x,yes,2026-01-03,bob\n"
        "3,4,false,bad-day,cid,extra\n"
        "5.0,1e3,TRUE,2026-01-05,dan\n"
        "6\n",
    )
    table = new_table("parsed")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, source, table, "csv", schema={"ddl": "id BIGINT, amount DOUBLE, ok BOOLEAN, day DATE, name STRING"}
        )
        run = await run_once(loading_stack, client, ingestion_id)
    assert counts(run) == ("SUCCESS", 1, 1, 0, 0, 5), run
    rows = await loading_stack.sql(f"SELECT name, id, amount, ok, day, _corrupt_record, _rescued_data FROM {table}")
    by_name = {row[0]: row[1:] for row in rows}
    assert by_name["ann"][:5] == ["1", "2.5", "True", "2026-01-02", None]
    assert by_name["bob"][:5] == ["2", None, "True", "2026-01-03", None]
    assert by_name["cid"][:5] == ["3", "4.0", "False", None, "3,4,false,bad-day,cid,extra"]
    assert by_name["dan"][:5] == [None, "1000.0", "True", "2026-01-05", None]
    assert by_name[None][:5] == ["6", None, None, None, "6"]
    rescued = {name: json.loads(str(row[5])) for name, row in by_name.items() if row[5] is not None}
    assert set(rescued) == {"bob", "cid", "dan"}, rescued
    assert {k: v for k, v in rescued["bob"].items() if k != "_file_path"} == {"amount": "x"}
    assert {k: v for k, v in rescued["cid"].items() if k != "_file_path"} == {"day": "bad-day"}
    assert {k: v for k, v in rescued["dan"].items() if k != "_file_path"} == {"id": "5.0"}
    assert rescued["bob"]["_file_path"] == f"file://{source}/a b.csv"


async def read_modes(stack: InProcessStack, table: str) -> list[tuple[str, str]]:
    """(batch key, how its rows were read) of every snapshot of the table, oldest first."""
    rows = await stack.sql(
        f"SELECT summary['wap.id'], summary['autoloader.read'] FROM {table}.snapshots ORDER BY committed_at"
    )
    return [(str(key), str(mode)) for key, mode in rows]


async def test_clean_csv_is_written_as_read_and_a_rejected_row_sends_the_batch_to_the_projection(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    """A batch whose CSV values the reader parses itself is written without a projection. A batch with a row
    the reader rejects commits nothing that way: it is read again and ends exactly as text + cast would have
    it, once; the next batch goes straight to the projection, the one after tries the direct write again."""
    source = tmp_path / "src"
    table = new_table("direct")
    write(source / "a.csv", "id,amount,ok,name\n1,2.5,true,ann\n2,3,false,bob\n")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, source, table, "csv", schema={"ddl": "id BIGINT, amount DOUBLE, ok BOOLEAN, name STRING"}
        )
        runs = [await run_once(loading_stack, client, ingestion_id)]
        write(source / "b.csv", "id,amount,ok,name\n 3,x,yes,cid\n4,1e3,TRUE,dan\n5\n")
        runs.append(await run_once(loading_stack, client, ingestion_id))
        write(source / "c.csv", "id,amount,ok,name\n6,1,true,eve\n")
        runs.append(await run_once(loading_stack, client, ingestion_id))
        write(source / "d.csv", "id,amount,ok,name\n7,2,false,fay\n")
        runs.append(await run_once(loading_stack, client, ingestion_id))
    assert [counts(run)[-1] for run in runs] == [2, 3, 1, 1], runs
    modes = [mode for _, mode in await read_modes(loading_stack, table)]
    # One snapshot per batch: the failed direct write of the second batch left none behind.
    assert modes == ["direct", "projected-after-rejects", "projected", "direct"], modes
    rows = await loading_stack.sql(f"SELECT id, amount, ok, name, _corrupt_record, _rescued_data FROM {table}")
    by_id = {row[0]: row[1:] for row in rows}
    assert len(rows) == 7 and set(by_id) == {"1", "2", "3", "4", "5", "6", "7"}, rows
    assert by_id["1"] == ["2.5", "True", "ann", None, None]
    assert by_id["3"][:4] == [None, "True", "cid", None]
    assert {k: v for k, v in json.loads(str(by_id["3"][4])).items() if k != "_file_path"} == {"amount": "x"}
    assert by_id["4"] == ["1000.0", "True", "dan", None, None]
    assert by_id["5"] == [None, None, None, "5", None]
    assert by_id["7"] == ["2.0", "False", "fay", None, None]


async def test_parquet_int_column_is_widened_to_bigint(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    await spark_write(
        loading_stack, "parquet", "SELECT CAST(1 AS INT) AS id, 'a' AS name", source / "a.parquet", tmp_path
    )
    table = new_table("widen")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "parquet")
        assert (await run_once(loading_stack, client, ingestion_id))["status"] == "SUCCESS"
        assert (await columns(loading_stack, table))["id"] == "int"
        big = "SELECT CAST(5000000000 AS BIGINT) AS id, 'b' AS name"
        await spark_write(loading_stack, "parquet", big, source / "b.parquet", tmp_path)
        run = await run_once(loading_stack, client, ingestion_id)
    assert counts(run) == ("SUCCESS", 2, 1, 0, 0, 1), run
    assert (await columns(loading_stack, table))["id"] == "bigint"
    assert await loading_stack.sql(f"SELECT id FROM {table} ORDER BY id") == [["1"], ["5000000000"]]


async def test_one_batch_of_avro_files_with_different_schemas(loading_stack: InProcessStack, tmp_path: Path) -> None:
    """Spark alone would read both files with one file's schema and drop `extra`; each keeps its fields."""
    source = tmp_path / "src"
    await spark_write(loading_stack, "avro", "SELECT 1 AS id, 'ann' AS name", source / "a.avro", tmp_path)
    extra = "SELECT 2 AS id, 'bob' AS name, 'kept' AS extra"
    await spark_write(loading_stack, "avro", extra, source / "b.avro", tmp_path)
    table = new_table("avro_mixed")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "avro")
        run = await run_once(loading_stack, client, ingestion_id)
    assert counts(run) == ("SUCCESS", 2, 2, 0, 0, 2), run
    assert await loading_stack.sql(f"SELECT id, name, extra FROM {table} ORDER BY id") == [
        ["1", "ann", None],
        ["2", "bob", "kept"],
    ]


async def test_unsafe_type_change_fails_clearly(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    await spark_write(loading_stack, "parquet", "SELECT CAST(1 AS BIGINT) AS id", source / "a.parquet", tmp_path)
    table = new_table("unsafe")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table, "parquet")
        assert (await run_once(loading_stack, client, ingestion_id))["status"] == "SUCCESS"
        await spark_write(loading_stack, "parquet", "SELECT 'x1' AS id", source / "b.parquet", tmp_path)
        run = await run_once(loading_stack, client, ingestion_id)
    assert run["status"] == "FAILED", run
    assert "column 'id': the files hold string but the table holds bigint" in run["error"], run["error"]
    assert await loading_stack.sql(f"SELECT count(*) FROM {table}.snapshots") == [["1"]]


# --- metadata columns, partitioning, table properties -----------------------------------------------------


async def test_metadata_columns_say_where_each_row_came_from(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src dir"
    write(source / "day 1+2.csv", "id\n1\n2\n")
    table = new_table("meta")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, source, table, "csv", metadata_columns={"enabled": True, "prefix": "src_"}
        )
        run = await run_once(loading_stack, client, ingestion_id)
    assert run["status"] == "SUCCESS", run
    rows = await loading_stack.sql(
        f"SELECT DISTINCT src_source_file, src_source_size, src_run_id, src_source_modified_at IS NOT NULL,"
        f" src_ingested_at >= src_source_modified_at FROM {table}"
    )
    size = (source / "day 1+2.csv").stat().st_size
    assert rows == [[f"file://{source}/day 1+2.csv", str(size), run["run_id"], "True", "True"]]


async def test_partitioning_and_properties_of_a_new_table(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source / "a.json", '{"id": 1, "ts": "2026-01-02T03:04:05Z", "country": "DE"}\n')
    table = new_table("layout")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client,
            source,
            table,
            "json",
            schema={"hints": {"ts": "timestamp"}},
            destination={
                "table": table,
                "partition_by": ["days(ts)", "bucket(4, id)", "country"],
                "table_properties": {"write.parquet.compression-codec": "zstd", "format-version": "1"},
            },
        )
        run = await run_once(loading_stack, client, ingestion_id)
    assert run["status"] == "SUCCESS", run
    partitions = await loading_stack.sql(
        f"SELECT partition.ts_day, partition.id_bucket BETWEEN 0 AND 3, partition.country FROM {table}.partitions"
    )
    assert partitions == [["2026-01-02", "True", "DE"]]
    properties = dict((k, v) for k, v in await loading_stack.sql(f"SHOW TBLPROPERTIES {table}"))
    assert properties["write.parquet.compression-codec"] == "zstd"
    assert properties["format-version"] == "1"
    assert properties["write.wap.enabled"] == "true"


async def test_partition_on_a_missing_column_fails_naming_it(loading_stack: InProcessStack, tmp_path: Path) -> None:
    source = tmp_path / "src"
    write(source / "a.csv", "id\n1\n")
    table = new_table("badpart")
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, source, table, "csv", destination={"table": table, "partition_by": ["days(ts)"]}
        )
        run = await run_once(loading_stack, client, ingestion_id)
    assert run["status"] == "FAILED", run
    assert "destination.partition_by: 'days(ts)' names no column of the table" in run["error"], run["error"]


# --- on S3 ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with running_s3_server("AUTOLOADER_TEST_S3_SCHEMA") as server:
        yield server


async def test_s3_files_with_different_headers_and_metadata_columns(
    loading_stack: InProcessStack, s3: S3Server
) -> None:
    """On S3 the headers are read with ranged GETs; metadata and rescued data name the s3:// object."""
    bucket = s3.create_bucket()
    s3.put_object(bucket, "landing/a.csv", "id,amount\n1,2.5\n")
    s3.put_object(bucket, "landing/b.csv", "amount,id,note\nlots,2,hi\n")
    table = new_table("s3_mixed")
    async with loading_stack.http(loading_stack.admin_token) as client:
        response = await client.post(
            "/api/v1/ingestions",
            json={
                "ingestion_id": f"s3-schema-{uuid.uuid4().hex[:8]}",
                "name": "mixed headers on S3",
                "source": {**s3.source(bucket, "landing"), "format": "csv", "options": CSV_OPTIONS},
                "destination": {"table": table},
                # Inferred over the whole batch, "lots" would make amount a string column; the hint keeps it
                # a double, so "lots" is rescued.
                "schema": {"hints": {"amount": "double"}},
                "metadata_columns": {"enabled": True},
            },
        )
        assert response.status_code == 201, response.text
        run = await run_once(loading_stack, client, response.json()["ingestion_id"])
    assert counts(run) == ("SUCCESS", 2, 2, 0, 0, 2), run
    rows = await loading_stack.sql(f"SELECT id, amount, note, _source_file, _rescued_data FROM {table} ORDER BY id")
    assert rows[0] == ["1", "2.5", None, f"s3://{bucket}/landing/a.csv", None]
    assert rows[1][:4] == ["2", None, "hi", f"s3://{bucket}/landing/b.csv"]
    assert json.loads(str(rows[1][4])) == {"amount": "lots", "_file_path": f"s3://{bucket}/landing/b.csv"}
