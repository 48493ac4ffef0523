"""Ingestions over the REST gateway: CRUD round trips, pagination, PATCH semantics, idempotency, validation.

Everything goes through the real HTTP gateway, the real control service and a real PostgreSQL. The database
is shared by the whole session, so every test uses its own ingestion ids and never assumes an empty list.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from services.shared.auth import Role
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

INGESTIONS = "/api/v1/ingestions"
MAX_BODY_BYTES = 64 * 1024  # the limit tests/support/stack.py gives the gateway
OUTPUT_ONLY = ("owner", "create_time", "update_time", "next_fire_time")

# gRPC status codes as they appear in the JSON error body.
INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, RESOURCE_EXHAUSTED, INTERNAL = 3, 5, 6, 8, 13

_LEAK_MARKERS = ("Traceback", 'File "', '.py", line', "site-packages", "asyncpg", "psycopg")


# --------------------------------------------------------------------------------------------- helpers


def unique_id(prefix: str = "it") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ingestion_body(ingestion_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid ingestion with every field a client may set (nested, map, optional, schedule)."""
    body: dict[str, Any] = {
        "name": "Orders from S3",
        "source": {
            "uri": "s3://landing-bucket/orders/",
            "pattern": "*.csv",
            "format": "csv",
            "options": {"header": "true", "delimiter": ";"},
            "endpoint_url": "http://127.0.0.1:9000",
            "region": "us-east-1",
            "credentials_ref": "env:ORDERS_KEYS",
            "listing": {"mode": "incremental", "full_listing_every_runs": 5, "full_listing_interval_seconds": 3600},
        },
        "destination": {
            "table": "raw.orders",
            "write_mode": "merge",
            "merge_keys": ["order_id", "line"],
            "merge_order_by": "updated_at",
            "partition_by": ["days(updated_at)", "bucket(8, order_id)"],
            "table_properties": {"write.parquet.compression-codec": "zstd"},
        },
        "schema": {
            "ddl": "",
            "columns": [
                {"name": "order_id", "type": "bigint"},
                {"name": "line", "type": "int"},
                {"name": "updated_at", "type": "timestamp"},
            ],
            "hints": {"amount": "decimal(12,2)"},
            "evolution_mode": "rescue",
            "sample_files": 10,
            "sample_bytes": 1_000_000,
            "rescue_data": False,
        },
        "metadata_columns": {"enabled": True, "prefix": "src_"},
        "max_retries": 5,
        "max_files_per_run": 100,
        "max_bytes_per_run": 1_000_000,
        "schedule": {"cron": "0 2 * * *", "timezone": "Europe/Berlin"},
        "enabled": True,
    }
    if ingestion_id is not None:
        body["ingestion_id"] = ingestion_id
    body.update(overrides)
    return body


def with_path(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of body with the field at a dotted path set to value."""
    changed = copy.deepcopy(body)
    *parents, leaf = dotted.split(".")
    target = changed
    for part in parents:
        target = target.setdefault(part, {})
    target[leaf] = value
    return changed


def without_output_only(ingestion: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ingestion.items() if k not in OUTPUT_ONLY}


def assert_no_leak(response: httpx.Response) -> None:
    for marker in _LEAK_MARKERS:
        assert marker not in response.text, f"response leaks internals ({marker!r}): {response.text[:500]}"


def error_body(response: httpx.Response, http_status: int, grpc_code: int) -> dict[str, Any]:
    """Assert a google.rpc.Status-shaped JSON error with the given statuses, and return it."""
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_no_leak(response)
    body: dict[str, Any] = response.json()
    assert body["code"] == grpc_code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["details"], list), body
    return body


def violations(body: dict[str, Any]) -> dict[str, str]:
    """field → description of every google.rpc.BadRequest field violation in an error body."""
    found: dict[str, str] = {}
    for detail in body["details"]:
        assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest", detail
        for violation in detail["field_violations"]:
            found[violation["field"]] = violation["description"]
    return found


def bad_request_fields(response: httpx.Response) -> dict[str, str]:
    return violations(error_body(response, 400, INVALID_ARGUMENT))


async def create(client: httpx.AsyncClient, body: dict[str, Any], **params: str) -> dict[str, Any]:
    response = await client.post(INGESTIONS, json=body, params=params)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def get(client: httpx.AsyncClient, ingestion_id: str) -> dict[str, Any]:
    response = await client.get(f"{INGESTIONS}/{ingestion_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def list_all(client: httpx.AsyncClient, page_size: int) -> list[list[dict[str, Any]]]:
    """Every page of the ingestion list, following next_page_token to the end."""
    pages, token = [], ""
    for _ in range(10_000):
        params = {"page_size": str(page_size), **({"page_token": token} if token else {})}
        response = await client.get(INGESTIONS, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body["ingestions"])
        token = body["next_page_token"]
        if not token:
            return pages
    raise AssertionError("pagination never ended")


# --------------------------------------------------------------------------------------------- fixtures


@pytest_asyncio.fixture(loop_scope="session")
async def admin(stack: InProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.http(stack.admin_token) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def editor(stack: InProcessStack) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """An editor token for a fresh principal: (principal name, client)."""
    name = unique_id("editor")
    token = await stack.make_token(Role.EDITOR, name=name)
    async with stack.http(token) as client:
        yield name, client


@pytest_asyncio.fixture(loop_scope="session")
async def existing(admin: httpx.AsyncClient) -> dict[str, Any]:
    """A freshly created, fully populated ingestion."""
    return await create(admin, ingestion_body(unique_id("existing")))


# --------------------------------------------------------------------------------------------- CRUD


async def test_create_with_client_id_round_trips(editor: tuple[str, httpx.AsyncClient]) -> None:
    principal, client = editor
    body = ingestion_body(unique_id("orders"))

    created = await create(client, body)

    assert without_output_only(created) == body
    assert created["owner"] == principal
    assert created["create_time"] == created["update_time"]
    assert await get(client, body["ingestion_id"]) == created


async def test_create_without_id_generates_one(admin: httpx.AsyncClient) -> None:
    body = ingestion_body()
    first = await create(admin, body)
    second = await create(admin, body)

    for created in (first, second):
        assert re.fullmatch(r"ingestion-[0-9a-f]{6}", created["ingestion_id"]), created["ingestion_id"]
        assert await get(admin, created["ingestion_id"]) == created
    assert first["ingestion_id"] != second["ingestion_id"]


async def test_create_applies_documented_defaults(admin: httpx.AsyncClient) -> None:
    minimal = {
        "ingestion_id": unique_id("minimal"),
        "name": "minimal",
        "source": {"uri": "file:///data/in/", "format": "json"},
        "destination": {"table": "lake.raw.events"},
    }

    created = await create(admin, minimal)

    assert created["max_retries"] == 3
    assert created["enabled"] is True
    assert created["destination"]["write_mode"] == "append"
    assert created["source"]["listing"] == {
        "mode": "full",
        "full_listing_every_runs": 10,
        "full_listing_interval_seconds": 0,
    }
    for unset in ("max_files_per_run", "max_bytes_per_run", "schedule"):
        assert unset not in created, f"{unset} should stay unset, got {created.get(unset)!r}"


async def test_create_ignores_client_supplied_output_only_fields(editor: tuple[str, httpx.AsyncClient]) -> None:
    principal, client = editor
    body = ingestion_body(unique_id("spoof"), owner="mallory", create_time="2001-01-01T00:00:00Z")

    created = await create(client, body)

    assert created["owner"] == principal
    assert not created["create_time"].startswith("2001-")


async def test_second_create_with_same_id_conflicts(admin: httpx.AsyncClient) -> None:
    ingestion_id = unique_id("dup")
    original = await create(admin, ingestion_body(ingestion_id))

    response = await admin.post(INGESTIONS, json=ingestion_body(ingestion_id, name="second attempt"))

    body = error_body(response, 409, ALREADY_EXISTS)
    assert ingestion_id in body["message"]
    assert await get(admin, ingestion_id) == original


async def test_list_pages_through_every_ingestion_exactly_once(admin: httpx.AsyncClient) -> None:
    prefix = unique_id("page")
    mine = {(await create(admin, ingestion_body(f"{prefix}-{n}")))["ingestion_id"] for n in range(5)}

    pages = await list_all(admin, page_size=2)

    assert len(pages) >= 3
    assert all(len(page) <= 2 for page in pages)
    assert all(pages[:-1]), "only the last page may be empty"
    listed = [ingestion["ingestion_id"] for page in pages for ingestion in page]
    assert listed == sorted(listed), "ingestions are listed ordered by ingestion_id"
    assert len(listed) == len(set(listed)), "an ingestion was listed twice"
    assert mine <= set(listed)


async def test_list_page_size_bounds_the_page(admin: httpx.AsyncClient) -> None:
    for n in range(3):
        await create(admin, ingestion_body(unique_id(f"size{n}")))

    response = await admin.get(INGESTIONS, params={"page_size": "1"})

    assert response.status_code == 200, response.text
    assert len(response.json()["ingestions"]) == 1
    assert response.json()["next_page_token"]


async def test_patch_nested_field_keeps_its_siblings(admin: httpx.AsyncClient, existing: dict[str, Any]) -> None:
    ingestion_id = existing["ingestion_id"]

    response = await admin.patch(f"{INGESTIONS}/{ingestion_id}", json={"source": {"pattern": "**/*.json"}})

    assert response.status_code == 200, response.text
    patched = response.json()
    expected = with_path(without_output_only(existing), "source.pattern", "**/*.json")
    assert without_output_only(patched) == expected
    assert patched["owner"] == existing["owner"]
    assert patched["create_time"] == existing["create_time"]
    assert patched["update_time"] > existing["update_time"]
    assert await get(admin, ingestion_id) == patched


async def test_patch_changes_exactly_the_fields_present(admin: httpx.AsyncClient, existing: dict[str, Any]) -> None:
    ingestion_id = existing["ingestion_id"]
    changes = {"name": "renamed", "enabled": False, "schedule": {"timezone": "UTC"}, "max_retries": 0}

    response = await admin.patch(f"{INGESTIONS}/{ingestion_id}", json=changes)

    assert response.status_code == 200, response.text
    expected = without_output_only(existing)
    expected.update(name="renamed", enabled=False, max_retries=0)
    expected["schedule"] = {"cron": existing["schedule"]["cron"], "timezone": "UTC"}
    assert without_output_only(response.json()) == expected
    assert await get(admin, ingestion_id) == response.json()


@pytest.mark.parametrize("field", ["max_files_per_run", "max_bytes_per_run", "schedule"])
async def test_patch_with_null_clears_an_optional_field(
    admin: httpx.AsyncClient, existing: dict[str, Any], field: str
) -> None:
    ingestion_id = existing["ingestion_id"]
    assert field in existing

    response = await admin.patch(f"{INGESTIONS}/{ingestion_id}", json={field: None})

    assert response.status_code == 200, response.text
    expected = without_output_only(existing)
    del expected[field]
    assert without_output_only(response.json()) == expected
    assert field not in await get(admin, ingestion_id)


async def test_delete_then_get_is_not_found(admin: httpx.AsyncClient, existing: dict[str, Any]) -> None:
    ingestion_id = existing["ingestion_id"]

    response = await admin.delete(f"{INGESTIONS}/{ingestion_id}")

    assert response.status_code == 200, response.text
    assert response.json()["ingestion_id"] == ingestion_id
    error_body(await admin.get(f"{INGESTIONS}/{ingestion_id}"), 404, NOT_FOUND)
    error_body(await admin.delete(f"{INGESTIONS}/{ingestion_id}"), 404, NOT_FOUND)
    error_body(await admin.patch(f"{INGESTIONS}/{ingestion_id}", json={"name": "x"}), 404, NOT_FOUND)
    listed = {i["ingestion_id"] for page in await list_all(admin, page_size=1000) for i in page}
    assert ingestion_id not in listed


async def test_id_can_be_reused_after_delete(admin: httpx.AsyncClient, existing: dict[str, Any]) -> None:
    ingestion_id = existing["ingestion_id"]
    assert (await admin.delete(f"{INGESTIONS}/{ingestion_id}")).status_code == 200

    recreated = await create(admin, ingestion_body(ingestion_id, name="second life"))

    assert recreated["name"] == "second life"


# --------------------------------------------------------------------------------------------- request_id


async def test_create_retried_with_same_request_id_returns_first_result(admin: httpx.AsyncClient) -> None:
    name = unique_id("retry")
    request_id = uuid.uuid4().hex

    first = await create(admin, ingestion_body(name=name), request_id=request_id)
    retry = await create(admin, ingestion_body(name=name), request_id=request_id)
    other = await create(admin, ingestion_body(name=name), request_id=uuid.uuid4().hex)

    assert retry == first
    assert other["ingestion_id"] != first["ingestion_id"]
    stored = [i for page in await list_all(admin, page_size=1000) for i in page if i["name"] == name]
    assert sorted(i["ingestion_id"] for i in stored) == sorted([first["ingestion_id"], other["ingestion_id"]])


async def test_request_id_is_scoped_to_the_caller(
    admin: httpx.AsyncClient, editor: tuple[str, httpx.AsyncClient]
) -> None:
    _, editor_client = editor
    request_id = uuid.uuid4().hex

    by_admin = await create(admin, ingestion_body(), request_id=request_id)
    by_editor = await create(editor_client, ingestion_body(), request_id=request_id)

    assert by_admin["ingestion_id"] != by_editor["ingestion_id"]


async def test_concurrent_retries_with_same_request_id_create_one_ingestion(admin: httpx.AsyncClient) -> None:
    await create(admin, ingestion_body())  # warm connections so the retries really overlap
    for _ in range(3):
        request_id = uuid.uuid4().hex
        responses = await asyncio.gather(
            *[admin.post(INGESTIONS, params={"request_id": request_id}, json=ingestion_body()) for _ in range(8)]
        )
        assert all(r.status_code == 201 for r in responses), [r.text for r in responses]
        ids = {r.json()["ingestion_id"] for r in responses}
        assert len(ids) == 1, f"one request_id created {len(ids)} ingestions: {sorted(ids)}"


@pytest.mark.parametrize("request_id", ["\x00", "retry\n1"])
async def test_request_id_with_control_characters_is_refused(admin: httpx.AsyncClient, request_id: str) -> None:
    # A NUL used to reach PostgreSQL (which cannot store it) and come back as a 500.
    response = await admin.post(INGESTIONS, params={"request_id": request_id}, json=ingestion_body())
    assert "request_id" in violations(error_body(response, 400, INVALID_ARGUMENT))


# --------------------------------------------------------------------------------------------- validation


BAD_CREATES = [
    pytest.param("destination.write_mode", "upsert", "destination.write_mode", id="write_mode-unknown"),
    pytest.param("source.format", "xml", "source.format", id="format-unknown"),
    pytest.param("source.format", "", "source.format", id="format-missing"),
    pytest.param("source.uri", "ftp://files.example.com/in/", "source.uri", id="uri-ftp"),
    pytest.param("source.uri", "s3:///prefix/", "source.uri", id="uri-s3-no-bucket"),
    pytest.param("source.uri", "s3://", "source.uri", id="uri-s3-empty"),
    pytest.param("source.uri", "file://relative/dir/", "source.uri", id="uri-file-with-host"),
    pytest.param("source.uri", "file:relative/dir/", "source.uri", id="uri-file-relative"),
    pytest.param("source.uri", "data/in/", "source.uri", id="uri-no-scheme"),
    pytest.param("source.uri", "s3://bucket/a/../b/", "source.uri", id="uri-s3-dotdot"),
    pytest.param("source.uri", "file:///data/../etc/", "source.uri", id="uri-file-dotdot"),
    pytest.param(
        "source.uri",
        "file:///data/%2e%2e/etc/",
        "source.uri",
        id="uri-file-dotdot-percent-encoded",
    ),
    pytest.param("source.pattern", "../*.csv", "source.pattern", id="pattern-dotdot"),
    pytest.param("destination.table", "orders", "destination.table", id="table-one-part"),
    pytest.param("destination.table", "a.b.c.d", "destination.table", id="table-four-parts"),
    pytest.param("destination.table", "db.1abc", "destination.table", id="table-leading-digit"),
    pytest.param("destination.table", "db.t;drop", "destination.table", id="table-semicolon"),
    pytest.param("destination.table", "", "destination.table", id="table-missing"),
    pytest.param("schedule.cron", "61 * * * *", "schedule.cron", id="cron-minute-out-of-range"),
    pytest.param("schedule.cron", "* * * *", "schedule.cron", id="cron-four-fields"),
    pytest.param("schedule.cron", "every day", "schedule.cron", id="cron-words"),
    pytest.param("schedule.timezone", "Mars/Olympus_Mons", "schedule.timezone", id="timezone-unknown"),
    pytest.param("schedule.timezone", "../../etc/passwd", "schedule.timezone", id="timezone-path"),
    pytest.param("max_retries", -1, "max_retries", id="max_retries-negative"),
    pytest.param("max_files_per_run", 0, "max_files_per_run", id="max_files_per_run-zero"),
    pytest.param("max_bytes_per_run", -5, "max_bytes_per_run", id="max_bytes_per_run-negative"),
    pytest.param("name", "", "name", id="name-missing"),
    pytest.param("bogus", 1, "bogus", id="unknown-top-level-field"),
    pytest.param("source.bogus", "x", "source.bogus", id="unknown-nested-field"),
    pytest.param("schedule.bogus", "x", "schedule.bogus", id="unknown-nested-field-schedule"),
    pytest.param("ingestion_id", "Bad_ID", "ingestion_id", id="id-uppercase-underscore"),
    pytest.param("ingestion_id", "-leading-hyphen", "ingestion_id", id="id-leading-hyphen"),
    pytest.param("ingestion_id", "a" * 64, "ingestion_id", id="id-too-long"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD_CREATES)
async def test_invalid_create_is_refused_naming_the_field(
    admin: httpx.AsyncClient, path: str, value: Any, field: str
) -> None:
    ingestion_id = unique_id("invalid")
    body = with_path(ingestion_body(ingestion_id), path, value)

    response = await admin.post(INGESTIONS, json=body)

    fields = bad_request_fields(response)
    assert field in fields, fields
    assert field in response.json()["message"]
    if path != "ingestion_id":
        error_body(await admin.get(f"{INGESTIONS}/{ingestion_id}"), 404, NOT_FOUND)


@pytest.mark.parametrize("endpoint_url", ["", "http://127.0.0.1:9000"], ids=["no-endpoint", "endpoint"])
async def test_uppercase_scheme_is_normalised_or_refused(admin: httpx.AsyncClient, endpoint_url: str) -> None:
    body = ingestion_body(unique_id("scheme"))
    body["source"].update(uri="S3://landing-bucket/orders/", endpoint_url=endpoint_url)

    response = await admin.post(INGESTIONS, json=body)

    if response.status_code == 201:
        assert response.json()["source"]["uri"].startswith("s3://")
    else:
        assert list(bad_request_fields(response)) == ["source.uri"]


async def test_every_violation_is_reported_at_once(admin: httpx.AsyncClient) -> None:
    body = ingestion_body(unique_id("many"), name="")
    body = with_path(body, "source.format", "xml")
    body = with_path(body, "destination.table", "orders")
    body = with_path(body, "max_retries", -1)

    fields = bad_request_fields(await admin.post(INGESTIONS, json=body))

    assert {"name", "source.format", "destination.table", "max_retries"} <= set(fields)


async def test_overwrite_write_mode_is_refused_with_the_manual_alternatives(admin: httpx.AsyncClient) -> None:
    body = with_path(ingestion_body(unique_id("overwrite")), "destination.write_mode", "overwrite")

    response = await admin.post(INGESTIONS, json=body)

    description = bad_request_fields(response)["destination.write_mode"]
    text = description.lower()
    assert "overwrite" in text and "not supported" in text
    assert "append" in text
    assert re.search(r"drop\w* the (destination )?table", text), description
    assert "processed files" in text, description
    assert description in response.json()["message"]


async def test_route_named_in_the_overwrite_refusal_is_served(
    admin: httpx.AsyncClient, existing: dict[str, Any]
) -> None:
    body = with_path(ingestion_body(unique_id("overwrite")), "destination.write_mode", "overwrite")
    description = bad_request_fields(await admin.post(INGESTIONS, json=body))["destination.write_mode"]
    match = re.search(r"\b(GET|POST|PATCH|DELETE) (/api/v1/\S+?)[).,;]?(?:\s|$)", description)
    assert match, f"the refusal names no route: {description}"
    method, template = match.groups()

    assert (method, template) == ("DELETE", "/api/v1/ingestions/{ingestion_id}/processed-files")

    response = await admin.request(method, template.replace("{ingestion_id}", existing["ingestion_id"]))

    # The body documented in spec/overwrite-mode-alternative.md.
    assert response.status_code == 200, response.text
    assert response.json() == {
        "message": "Cleared 0 processed file records",
        "files_cleared": 0,
        "ingestion_id": existing["ingestion_id"],
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"{not json", "not valid JSON", id="non-json"),
        pytest.param(b"\xff\xfe\x00", "not valid JSON", id="not-utf8"),
        pytest.param(b"[1, 2]", "JSON object", id="json-array"),
        pytest.param(b'"text"', "JSON object", id="json-string"),
        pytest.param(b"null", "JSON object", id="json-null"),
    ],
)
async def test_body_that_is_not_a_json_object_is_refused(
    admin: httpx.AsyncClient, content: bytes, expected: str
) -> None:
    response = await admin.post(INGESTIONS, content=content, headers={"content-type": "application/json"})

    assert expected in error_body(response, 400, INVALID_ARGUMENT)["message"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param("name", 12, id="string-given-number"),
        pytest.param("enabled", "yes", id="bool-given-string"),
        pytest.param("max_retries", 2**40, id="int32-overflow"),
        pytest.param("source.options", {"header": {"nested": True}}, id="map-value-object"),
        pytest.param("schedule", 5, id="message-given-number"),
    ],
)
async def test_wrongly_typed_field_is_refused(admin: httpx.AsyncClient, path: str, value: Any) -> None:
    body = with_path(ingestion_body(unique_id("typed")), path, value)

    response = await admin.post(INGESTIONS, json=body)

    assert path.split(".")[-1] in error_body(response, 400, INVALID_ARGUMENT)["message"]


async def test_deeply_nested_json_is_a_bad_request(admin: httpx.AsyncClient) -> None:
    response = await admin.post(INGESTIONS, content=b"[" * 20_000 + b"]" * 20_000)

    error_body(response, 400, INVALID_ARGUMENT)


@pytest.mark.parametrize("path", ["name", "source.pattern", "source.options.header"])
async def test_nul_character_is_refused_naming_the_field(admin: httpx.AsyncClient, path: str) -> None:
    body = with_path(ingestion_body(unique_id("nul")), path, "a\u0000b")

    response = await admin.post(INGESTIONS, json=body)

    assert path in bad_request_fields(response)


# --------------------------------------------------------------------------------------------- PATCH refusals


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"owner": "mallory"}, "owner", id="owner"),
        pytest.param({"create_time": "2001-01-01T00:00:00Z"}, "create_time", id="create_time"),
        pytest.param({"ingestion_id": "renamed-id"}, "ingestion_id", id="ingestion_id"),
        pytest.param({}, "update_mask", id="empty-body"),
        pytest.param({"bogus": 1}, "bogus", id="unknown-field"),
        pytest.param({"source": {"bogus": 1}}, "source.bogus", id="unknown-nested-field"),
        pytest.param({"source": {"uri": "ftp://x/"}}, "source.uri", id="invalid-nested-value"),
        pytest.param({"destination": {"write_mode": "overwrite"}}, "destination.write_mode", id="overwrite"),
        pytest.param({"max_files_per_run": 0}, "max_files_per_run", id="max_files_per_run-zero"),
    ],
)
async def test_invalid_patch_is_refused_and_changes_nothing(
    admin: httpx.AsyncClient, existing: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    ingestion_id = existing["ingestion_id"]

    response = await admin.patch(f"{INGESTIONS}/{ingestion_id}", json=changes)

    assert field in bad_request_fields(response)
    assert await get(admin, ingestion_id) == existing


async def test_patch_with_no_body_at_all_is_refused(admin: httpx.AsyncClient, existing: dict[str, Any]) -> None:
    response = await admin.patch(f"{INGESTIONS}/{existing['ingestion_id']}")

    assert "update_mask" in bad_request_fields(response)


# --------------------------------------------------------------------------------------------- list refusals


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"page_token": "!!!"}, "page_token", id="page_token-garbage"),
        pytest.param({"page_token": "abc"}, "page_token", id="page_token-bad-base64"),
        pytest.param({"page_token": "AA=="}, "page_token", id="page_token-not-an-id"),
        pytest.param({"page_size": "-1"}, "page_size", id="page_size-negative"),
        pytest.param({"page_size": "ten"}, "page_size", id="page_size-not-a-number"),
        pytest.param(
            {"page_size": "3000000000"},
            "page_size",
            id="page_size-beyond-int32",
        ),
    ],
)
async def test_bad_list_parameter_is_refused_naming_it(
    admin: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await admin.get(INGESTIONS, params=params)

    assert field in bad_request_fields(response)


# --------------------------------------------------------------------------------------------- size limit


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


async def _streamed(total: int) -> AsyncIterator[bytes]:
    for chunk in _chunks(total):
        yield chunk


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_oversized_body_is_refused_with_413(admin: httpx.AsyncClient, framing: str) -> None:
    ingestion_id = unique_id("huge")
    body = ingestion_body(ingestion_id, name="x" * 100)
    padded = json.dumps(body).encode() + b" " * (MAX_BODY_BYTES + 1)

    if framing == "content-length":
        response = await admin.post(INGESTIONS, content=padded)
    else:
        response = await admin.post(INGESTIONS, content=_streamed(len(padded)))

    body_json = error_body(response, 413, RESOURCE_EXHAUSTED)
    assert str(MAX_BODY_BYTES) in body_json["message"]
    error_body(await admin.get(f"{INGESTIONS}/{ingestion_id}"), 404, NOT_FOUND)


async def test_body_of_exactly_the_limit_is_accepted(admin: httpx.AsyncClient) -> None:
    body = ingestion_body(unique_id("big"))
    encoded = json.dumps(body).encode()
    padded = encoded + b" " * (MAX_BODY_BYTES - len(encoded))
    assert len(padded) == MAX_BODY_BYTES

    response = await admin.post(INGESTIONS, content=padded)

    assert response.status_code == 201, response.text


# --------------------------------------------------------------------------------------------- no leaks


@pytest.mark.parametrize(
    ("method", "url", "content"),
    [
        pytest.param("GET", INGESTIONS + "?page_size=3000000000", None, id="int32-overflow-query"),
        pytest.param("POST", INGESTIONS, b"[" * 20_000, id="deeply-nested-json"),
        pytest.param("POST", INGESTIONS, b'{"name": "a\\u0000b", "source": {}}', id="nul-in-string"),
        pytest.param("POST", INGESTIONS, b'{"source": {"uri": 7}}', id="wrong-type"),
        pytest.param("GET", INGESTIONS + "/%00", None, id="nul-in-path"),
    ],
)
async def test_error_responses_never_contain_a_stack_trace(
    admin: httpx.AsyncClient, method: str, url: str, content: bytes | None
) -> None:
    response = await admin.request(method, url, content=content)

    assert response.status_code >= 400
    assert_no_leak(response)
    body = response.json()
    assert set(body) == {"code", "message", "details"}
    if response.status_code >= 500:
        assert body["code"] == INTERNAL
        assert "internal error" in body["message"]
