"""The schema policy, merge, partitioning and metadata column settings over the REST gateway, and
GET /api/v1/ingestions/{ingestion_id}/schema.

Everything goes through the real HTTP gateway, the control and tracker services and a real PostgreSQL. The
database is shared by the whole session, so every test uses its own ingestion ids.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from services.shared.auth import Role
from tests.integration.test_ingestions_api import create, get
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

INGESTIONS = "/api/v1/ingestions"
OUTPUT_ONLY = ("owner", "create_time", "update_time")
# gRPC status codes as they appear in the JSON error body.
INVALID_ARGUMENT, NOT_FOUND = 3, 5

SCHEMA_DEFAULTS = {
    "ddl": "",
    "columns": [],
    "hints": {},
    "evolution_mode": "add_new_columns",
    "sample_files": 100,
    "sample_bytes": 64 * 1024 * 1024,
    "rescue_data": True,
}
METADATA_DEFAULTS = {"enabled": False, "prefix": "_"}


# --------------------------------------------------------------------------------------------- helpers


def unique_id(prefix: str = "schema") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def minimal_body(ingestion_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid ingestion that sets none of the new fields."""
    body: dict[str, Any] = {
        "ingestion_id": ingestion_id,
        "name": "Events",
        "source": {"uri": "file:///data/events/", "format": "json"},
        "destination": {"table": "raw.events"},
    }
    body.update(overrides)
    return body


def error_body(response: httpx.Response, http_status: int, grpc_code: int) -> dict[str, Any]:
    """Assert a google.rpc.Status-shaped JSON error with the given statuses, and return it."""
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == grpc_code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert "Traceback" not in response.text
    return body


def bad_request_fields(response: httpx.Response) -> dict[str, str]:
    """field → description of every google.rpc.BadRequest field violation of a 400 response."""
    body = error_body(response, 400, INVALID_ARGUMENT)
    found: dict[str, str] = {}
    for detail in body["details"]:
        assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest", detail
        for violation in detail["field_violations"]:
            assert violation["field"] not in found, f"{violation['field']} reported twice: {body}"
            found[violation["field"]] = violation["description"]
    return found


async def get_schema(client: httpx.AsyncClient, ingestion_id: str) -> dict[str, Any]:
    response = await client.get(f"{INGESTIONS}/{ingestion_id}/schema")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def without_output_only(ingestion: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ingestion.items() if k not in OUTPUT_ONLY}


async def execute(stack: InProcessStack, statement: str, *args: Any) -> str:
    connection = await asyncpg.connect(stack.database_url)
    try:
        result: str = await connection.execute(statement, *args)
    finally:
        await connection.close()
    return result


# --------------------------------------------------------------------------------------------- fixtures


@pytest_asyncio.fixture(loop_scope="session")
async def editor(stack: InProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.http(await stack.make_token(Role.EDITOR, name=unique_id("editor"))) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def viewer(stack: InProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.http(await stack.make_token(Role.VIEWER, name=unique_id("viewer"))) as client:
        yield client


# --------------------------------------------------------------------------------------------- GET .../schema


async def test_configured_ddl_is_reported_in_normal_form(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("ddl")
    ddl = "id BIGINT, `full name` String, amount DECIMAL(12, 2), tags ARRAY<STRING>, attrs MAP<STRING, INT>, seq LONG"
    created = await create(editor, minimal_body(ingestion_id, schema={"ddl": ddl}))
    assert created["schema"]["ddl"] == ddl, "the configuration keeps the DDL as written"

    schema = await get_schema(editor, ingestion_id)

    assert schema["origin"] == "configured"
    assert schema["columns"] == [
        {"name": "id", "type": "bigint"},
        {"name": "full name", "type": "string"},
        {"name": "amount", "type": "decimal(12,2)"},
        {"name": "tags", "type": "array<string>"},
        {"name": "attrs", "type": "map<string,int>"},
        {"name": "seq", "type": "bigint"},
    ]
    assert schema["ddl"] == (
        "`id` bigint, `full name` string, `amount` decimal(12,2), `tags` array<string>, `attrs` map<string,int>,"
        " `seq` bigint"
    )


async def test_configured_column_list_is_reported_like_ddl(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("columns")
    columns = [{"name": "ID", "type": "BIGINT"}, {"name": "payload", "type": "Struct<a: Int, `b c`: Date>"}]
    await create(editor, minimal_body(ingestion_id, schema={"columns": columns}))

    schema = await get_schema(editor, ingestion_id)

    assert schema == {
        "origin": "configured",
        "columns": [{"name": "ID", "type": "bigint"}, {"name": "payload", "type": "struct<`a`:int,`b c`:date>"}],
        "ddl": "`ID` bigint, `payload` struct<`a`:int,`b c`:date>",
    }


async def test_schema_is_unknown_without_an_explicit_schema(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("inferred")
    created = await create(editor, minimal_body(ingestion_id, schema={"hints": {"amount": "decimal(10,2)"}}))
    assert created["schema"]["hints"] == {"amount": "decimal(10,2)"}

    schema = await get_schema(editor, ingestion_id)

    assert schema == {"origin": "", "columns": [], "ddl": ""}


async def test_recorded_table_schema_wins_over_the_configured_one(
    stack: InProcessStack, editor: httpx.AsyncClient
) -> None:
    ingestion_id = unique_id("recorded")
    await create(editor, minimal_body(ingestion_id, schema={"ddl": "id bigint"}))
    recorded = {
        "type": "struct",
        "fields": [
            {"name": "id", "type": "long", "nullable": True, "metadata": {}},
            {
                "name": "tags",
                "type": {"type": "array", "elementType": "string", "containsNull": True},
                "nullable": True,
                "metadata": {},
            },
        ],
    }
    # What the tracker stores when a run that wrote the table finishes.
    await execute(
        stack,
        "INSERT INTO tracker.ingestion_state (ingestion_id, table_schema) VALUES ($1, $2)",
        ingestion_id,
        json.dumps(recorded),
    )

    schema = await get_schema(editor, ingestion_id)

    assert schema == {
        "origin": "table",
        "columns": [{"name": "id", "type": "bigint"}, {"name": "tags", "type": "array<string>"}],
        "ddl": "`id` bigint, `tags` array<string>",
    }


async def test_a_viewer_it_is_shared_with_can_read_the_schema(
    editor: httpx.AsyncClient, viewer: httpx.AsyncClient
) -> None:
    ingestion_id = unique_id("viewed")
    await create(editor, minimal_body(ingestion_id, schema={"ddl": "id int, name string"}))
    viewer_name = (await viewer.get("/api/v1/whoami")).json()["name"]
    share = {"principal": viewer_name, "role": "ROLE_VIEWER"}
    assert (await editor.post(f"{INGESTIONS}/{ingestion_id}/shares", json=share)).status_code == 200

    schema = await get_schema(viewer, ingestion_id)

    assert schema["origin"] == "configured"
    assert [c["name"] for c in schema["columns"]] == ["id", "name"]


@pytest.mark.parametrize("ingestion_id", ["never-created-ingestion", "Not_A_Valid_Id"])
async def test_schema_of_an_unknown_ingestion_is_not_found(viewer: httpx.AsyncClient, ingestion_id: str) -> None:
    response = await viewer.get(f"{INGESTIONS}/{ingestion_id}/schema")

    body = error_body(response, 404, NOT_FOUND)
    assert ingestion_id in body["message"]


async def test_schema_needs_a_token(stack: InProcessStack, editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("anonymous")
    await create(editor, minimal_body(ingestion_id, schema={"ddl": "id int"}))

    async with stack.http() as anonymous:
        response = await anonymous.get(f"{INGESTIONS}/{ingestion_id}/schema")

    assert response.status_code == 401, response.text


# --------------------------------------------------------------------------------------------- defaults


async def test_create_without_new_fields_applies_their_defaults(editor: httpx.AsyncClient) -> None:
    created = await create(editor, minimal_body(unique_id("defaults")))

    assert created["schema"] == SCHEMA_DEFAULTS
    assert created["metadata_columns"] == METADATA_DEFAULTS
    assert created["destination"] == {
        "table": "raw.events",
        "write_mode": "append",
        "merge_keys": [],
        "merge_order_by": "",
        "partition_by": [],
        "table_properties": {},
    }


async def test_row_stored_before_the_new_columns_reads_back_with_defaults(
    stack: InProcessStack, editor: httpx.AsyncClient
) -> None:
    ingestion_id = unique_id("legacy")
    created = await create(
        editor,
        minimal_body(
            ingestion_id,
            schema={"evolution_mode": "none", "sample_files": 7, "rescue_data": False},
            metadata_columns={"enabled": True, "prefix": "src_"},
        ),
    )
    # An older row: no schema or metadata_columns, and a destination written before merge/partitioning.
    result = await execute(
        stack,
        "UPDATE control.ingestions SET schema = NULL, metadata_columns = NULL,"
        " destination = jsonb_build_object('table', 'raw.events', 'write_mode', 'append')"
        " WHERE ingestion_id = $1",
        ingestion_id,
    )
    assert result == "UPDATE 1"

    found = await get(editor, ingestion_id)

    assert found["schema"] == SCHEMA_DEFAULTS
    assert found["metadata_columns"] == METADATA_DEFAULTS
    assert found["destination"]["merge_keys"] == []
    assert found["destination"]["partition_by"] == []
    assert without_output_only(found) == without_output_only(
        {**created, "schema": SCHEMA_DEFAULTS, "metadata_columns": METADATA_DEFAULTS}
    )
    assert (await get_schema(editor, ingestion_id))["origin"] == ""

    # It can still be changed, and the change writes the settings out in full.
    response = await editor.patch(f"{INGESTIONS}/{ingestion_id}", json={"schema": {"sample_files": 5}})
    assert response.status_code == 200, response.text
    assert response.json()["schema"] == {**SCHEMA_DEFAULTS, "sample_files": 5}
    assert (await get(editor, ingestion_id))["metadata_columns"] == METADATA_DEFAULTS


# --------------------------------------------------------------------------------------------- PATCH


async def test_patch_of_a_nested_schema_field_changes_only_it(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("patch-schema")
    created = await create(
        editor,
        minimal_body(ingestion_id, schema={"ddl": "id bigint", "hints": {"id": "int"}, "sample_files": 9}),
    )

    response = await editor.patch(
        f"{INGESTIONS}/{ingestion_id}", json={"schema": {"evolution_mode": "fail_on_new_columns"}}
    )

    assert response.status_code == 200, response.text
    expected = copy.deepcopy(without_output_only(created))
    expected["schema"]["evolution_mode"] = "fail_on_new_columns"
    assert without_output_only(response.json()) == expected
    assert await get(editor, ingestion_id) == response.json()
    assert (await get_schema(editor, ingestion_id))["columns"] == [{"name": "id", "type": "bigint"}]


async def test_patch_to_merge_with_keys_round_trips(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("patch-merge")
    created = await create(
        editor,
        minimal_body(
            ingestion_id,
            destination={"table": "raw.events", "partition_by": ["days(ts)"], "table_properties": {"a": "1"}},
        ),
    )

    response = await editor.patch(
        f"{INGESTIONS}/{ingestion_id}", json={"destination": {"write_mode": "merge", "merge_keys": ["id"]}}
    )

    assert response.status_code == 200, response.text
    expected = copy.deepcopy(without_output_only(created))
    expected["destination"].update(write_mode="merge", merge_keys=["id"])
    assert without_output_only(response.json()) == expected
    assert await get(editor, ingestion_id) == response.json()


async def test_patch_replaces_lists_and_maps_whole(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("patch-lists")
    created = await create(
        editor,
        minimal_body(
            ingestion_id,
            destination={
                "table": "raw.events",
                "write_mode": "merge",
                "merge_keys": ["a", "b"],
                "partition_by": ["days(ts)", "country"],
                "table_properties": {"x": "1", "y": "2"},
            },
        ),
    )

    response = await editor.patch(
        f"{INGESTIONS}/{ingestion_id}",
        json={
            "destination": {"merge_keys": ["c"], "partition_by": ["bucket(4, c)"], "table_properties": {"z": "3"}},
            "metadata_columns": {"enabled": True},
        },
    )

    assert response.status_code == 200, response.text
    found = await get(editor, ingestion_id)
    assert found == response.json()
    assert found["destination"] == {
        **created["destination"],
        "merge_keys": ["c"],
        "partition_by": ["bucket(4, c)"],
        "table_properties": {"z": "3"},
    }
    assert found["metadata_columns"] == {"enabled": True, "prefix": "_"}


async def test_patch_that_breaks_the_configuration_is_refused_and_changes_nothing(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("patch-bad")
    created = await create(editor, minimal_body(ingestion_id))

    response = await editor.patch(f"{INGESTIONS}/{ingestion_id}", json={"destination": {"write_mode": "merge"}})

    fields = bad_request_fields(response)
    assert list(fields) == ["destination.merge_keys"]
    assert "required" in fields["destination.merge_keys"]
    assert "destination.merge_keys" in response.json()["message"]
    assert await get(editor, ingestion_id) == created


async def test_patch_schema_that_drops_a_merge_key_column_is_refused(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("patch-drop-key")
    created = await create(
        editor,
        minimal_body(
            ingestion_id,
            destination={"table": "raw.events", "write_mode": "merge", "merge_keys": ["id"]},
            schema={"ddl": "id bigint, v string"},
        ),
    )

    response = await editor.patch(f"{INGESTIONS}/{ingestion_id}", json={"schema": {"ddl": "v string"}})

    fields = bad_request_fields(response)
    assert "'id' is not in the schema" in fields["destination.merge_keys[0]"]
    assert await get(editor, ingestion_id) == created
    assert (await get_schema(editor, ingestion_id))["ddl"] == "`id` bigint, `v` string"


# --------------------------------------------------------------------------------------------- create refusals


async def test_create_with_many_bad_new_fields_lists_every_violation(editor: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("many-bad")
    body = minimal_body(
        ingestion_id,
        destination={
            "table": "raw.events",
            "write_mode": "merge",
            "merge_order_by": "ts",
            "partition_by": ["country", "foo(x)"],
            "table_properties": {"write.wap.enabled": "false", "format-version": "3"},
        },
        schema={
            "ddl": "id bigint",
            "columns": [{"name": "id", "type": "bigint"}],
            "hints": {"amount": "money"},
            "evolution_mode": "sometimes",
            "sample_files": 0,
            "sample_bytes": 0,
        },
        metadata_columns={"enabled": True, "prefix": "1x"},
    )

    response = await editor.post(INGESTIONS, json=body)

    fields = bad_request_fields(response)
    assert set(fields) == {
        "destination.merge_keys",
        "destination.partition_by[1]",
        "destination.table_properties.write.wap.enabled",
        "destination.table_properties.format-version",
        "schema.columns",
        "schema.hints.amount",
        "schema.evolution_mode",
        "schema.sample_files",
        "schema.sample_bytes",
        "metadata_columns.prefix",
    }
    assert "'foo(x)' is not a partition transform" in fields["destination.partition_by[1]"]
    assert "not both" in fields["schema.columns"]
    assert "money" in fields["schema.hints.amount"]
    message = response.json()["message"]
    assert all(field in message for field in fields), message
    error_body(await editor.get(f"{INGESTIONS}/{ingestion_id}"), 404, NOT_FOUND)


@pytest.mark.parametrize(
    ("overrides", "field", "reason"),
    [
        pytest.param(
            {"destination": {"table": "a.b", "merge_keys": ["id"]}},
            "destination.merge_keys",
            "only used with write_mode 'merge'",
            id="merge_keys-with-append",
        ),
        pytest.param(
            {"destination": {"table": "a.b", "write_mode": "merge", "merge_keys": ["id", "ID"]}},
            "destination.merge_keys[1]",
            "listed twice",
            id="duplicate-merge-key",
        ),
        pytest.param(
            {"destination": {"table": "a.b", "write_mode": "merge", "merge_keys": ["a\u0000b"]}},
            "destination.merge_keys[0]",
            "NUL characters",  # refused by the gateway before the control service's own check
            id="nul-in-merge-key",
        ),
        pytest.param(
            {"destination": {"table": "a.b", "partition_by": ["bucket(0, id)"]}},
            "destination.partition_by[0]",
            "is not a partition transform",
            id="bucket-zero",
        ),
        pytest.param(
            {"destination": {"table": "a.b", "write_mode": "upsert"}},
            "destination.write_mode",
            "use 'append' or 'merge'",
            id="upsert",
        ),
        pytest.param(
            {"schema": {"ddl": "id bigint, ID string"}}, "schema.ddl", "'id' appears twice", id="duplicate-column"
        ),
        pytest.param({"schema": {"ddl": "id bigint,"}}, "schema.ddl", "ends early", id="ddl-unparseable"),
        pytest.param(
            {"schema": {"ddl": "id bigint"}, "destination": {"table": "a.b", "partition_by": ["days(ts)"]}},
            "destination.partition_by[0]",
            "column 'ts' is not in the schema",
            id="partition-column-not-in-schema",
        ),
        pytest.param(
            {"metadata_columns": {"prefix": "a-b"}},
            "metadata_columns.prefix",
            "letters, digits or _",
            id="prefix-hyphen",
        ),
    ],
)
async def test_invalid_new_field_is_refused_naming_it(
    editor: httpx.AsyncClient, overrides: dict[str, Any], field: str, reason: str
) -> None:
    ingestion_id = unique_id("bad")

    response = await editor.post(INGESTIONS, json=minimal_body(ingestion_id, **overrides))

    fields = bad_request_fields(response)
    assert field in fields, fields
    assert reason in fields[field]
    error_body(await editor.get(f"{INGESTIONS}/{ingestion_id}"), 404, NOT_FOUND)


async def test_empty_metadata_prefix_means_the_default(editor: httpx.AsyncClient) -> None:
    """Over the API an unset (empty) prefix is the default '_', not an invalid prefix."""
    created = await create(editor, minimal_body(unique_id("prefix"), metadata_columns={"enabled": True, "prefix": ""}))

    assert created["metadata_columns"] == {"enabled": True, "prefix": "_"}
