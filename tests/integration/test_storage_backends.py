"""One storage contract, run on each provider of tests/support/backends.py: `local` (the embedded PostgreSQL,
moto's S3 server) everywhere, `container` (PostgreSQL and MinIO through testcontainers) where a Docker engine
answers. `-m "not docker"` leaves the container cases out; `-rs` shows why they were skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio

from autoloader.stack.bootstrap import SCHEMAS
from services.executor.discover import HEAD_LIMIT, SourceAccess, SourceLimits, file_heads, list_source
from services.executor.source_endpoint import EndpointRefused
from services.shared.db import apply_migrations, create_pool
from services.shared.outbound_http import AddressPolicy, resolve_host
from tests.conftest import create_database
from tests.support.backends import S3Store, postgres_server, s3_store
from tests.support.runs import write_csv
from tests.support.stack import InProcessStack, start_stack

pytestmark = pytest.mark.integration

PROVIDER_PARAMS = [pytest.param("local"), pytest.param("container", marks=pytest.mark.docker)]


# --- PostgreSQL ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=PROVIDER_PARAMS)
def postgres(request: pytest.FixtureRequest) -> Iterator[str]:
    with postgres_server(request.param, request) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_database(postgres: str) -> AsyncIterator[str]:
    """A database of its own on the provider's server, dropped afterwards."""
    name = f"contract_{uuid.uuid4().hex[:10]}"
    yield await create_database(postgres, name)
    connection = await asyncpg.connect(postgres)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def migration_versions(directory: Path) -> list[int]:
    return sorted(int(path.name.split("_", 1)[0]) for path in directory.glob("*.sql"))


async def test_every_schema_migrates_once_to_its_latest_version(fresh_database: str) -> None:
    pool = await create_pool(fresh_database, service="tests", max_size=2)
    try:
        latest = {schema: migration_versions(directory)[-1] for schema, directory in SCHEMAS}
        assert {schema: await apply_migrations(pool, schema, directory) for schema, directory in SCHEMAS} == latest
        # A second start (another replica, a restart) applies nothing more.
        assert {schema: await apply_migrations(pool, schema, directory) for schema, directory in SCHEMAS} == latest
        for schema, directory in SCHEMAS:
            rows = await pool.fetch(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version')
            assert [row["version"] for row in rows] == migration_versions(directory)
        for table in ("auth.tokens", "control.ingestions", "tracker.runs", "tracker.files", "tracker.batches"):
            assert await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", table), table
    finally:
        await pool.close()


async def test_an_ingestion_is_created_listed_and_queued_through_the_stack(fresh_database: str, tmp_path: Path) -> None:
    """The services on this PostgreSQL, driven over HTTP. No executor takes runs here: they stay QUEUED."""
    source = tmp_path / "landing"
    write_csv(source, "part-0.csv", rows=3)
    stack = await start_stack(fresh_database, tmp_path / "home", preview_timeout_seconds=2.0)
    try:
        async with stack.http(stack.admin_token) as client:
            ingestion_id = f"contract-{uuid.uuid4().hex[:8]}"
            body = {
                "ingestion_id": ingestion_id,
                "name": "storage contract",
                "source": {"uri": source.as_uri() + "/", "format": "csv", "options": {"header": "true"}},
                "destination": {"table": "contract.events"},
            }
            created = await client.post("/api/v1/ingestions", json=body)
            assert created.status_code == 201, created.text
            listed = (await client.get("/api/v1/ingestions")).json()["ingestions"]
            assert [i["ingestion_id"] for i in listed] == [ingestion_id]

            queued = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
            assert queued.status_code == 202, queued.text
            run_id = queued.json()["run_id"]
            assert (await client.get(f"/api/v1/runs/{run_id}")).json()["status"] == "QUEUED"
            runs = (await client.get(f"/api/v1/ingestions/{ingestion_id}/runs")).json()["runs"]
            assert [r["run_id"] for r in runs] == [run_id]

            # One active run per ingestion: the partial unique index on this server refuses a second.
            second = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
            assert second.status_code == 409, second.text
            # Cancelling the queued run ends it at once and frees the ingestion for the next one.
            cancelled = await client.post(f"/api/v1/runs/{run_id}/cancel", json={})
            assert cancelled.status_code == 200, cancelled.text
            assert (await client.get(f"/api/v1/runs/{run_id}")).json()["status"] == "CANCELLED"
            assert (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).status_code == 202
    finally:
        await stack.stop()


# --- S3 -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=PROVIDER_PARAMS)
def s3(request: pytest.FixtureRequest) -> Iterator[S3Store]:
    with s3_store(request.param) as store:
        yield store


def only_this_endpoint(endpoint_url: str) -> AddressPolicy:
    """A policy that allows the endpoint's own addresses and port, and nothing else internal."""
    parts = urlsplit(endpoint_url)
    assert parts.hostname is not None
    port = parts.port or 80
    addresses = set(resolve_host(parts.hostname, port))
    return AddressPolicy.from_allowlist(f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses)


def access_to(store: S3Store) -> SourceAccess:
    limits = SourceLimits(endpoints=only_this_endpoint(store.endpoint_url))
    return SourceAccess(store.endpoint_url, store.region, store.access_key, store.secret_key, limits)


def put_objects(store: S3Store, bucket: str, objects: dict[str, bytes]) -> dict[str, str]:
    """Upload with boto3, as a producer would; return each key's ETag (without quotes)."""
    client = store.client()
    return {
        key: str(client.put_object(Bucket=bucket, Key=key, Body=body)["ETag"]).strip('"')
        for key, body in objects.items()
    }


LANDED = {
    "landing/a.csv": b"id\n1\n",
    "landing/b.csv": b"id\n2\n3\n",
    "landing/nested/c.csv": b"id\n4\n",
    "landing/\u00fc.csv": b"id\n5\n",  # non-ASCII: S3 orders keys by UTF-8 bytes
    "landing/_SUCCESS": b"",  # hidden from Spark, and so from the listing
    "landing/.a.csv.crc": b"crc",
    "landing/nested/": b"",  # a "directory" marker some tools write
    "elsewhere/d.csv": b"id\n6\n",
}
VISIBLE = ["a.csv", "b.csv", "nested/c.csv", "\u00fc.csv"]


def test_listing_finds_the_objects_put_with_boto3(s3: S3Store) -> None:
    bucket = s3.fresh_bucket()
    etags = put_objects(s3, bucket, LANDED)
    entries = list(list_source(f"s3://{bucket}/landing/", "", access_to(s3)))
    assert [e.key for e in entries] == VISIBLE
    for entry in entries:
        assert entry.etag == etags[f"landing/{entry.key}"]
        assert entry.size == len(LANDED[f"landing/{entry.key}"])
        assert entry.last_modified.tzinfo is not None
    csv_at_top = list(list_source(f"s3://{bucket}/landing", "*.csv", access_to(s3)))
    assert [e.key for e in csv_at_top] == ["a.csv", "b.csv", "\u00fc.csv"]


def test_listing_resumes_after_the_last_key_seen(s3: S3Store) -> None:
    bucket = s3.fresh_bucket()
    put_objects(s3, bucket, LANDED)
    uri, access = f"s3://{bucket}/landing/", access_to(s3)
    assert [e.key for e in list_source(uri, "", access, start_after="a.csv")] == VISIBLE[1:]
    assert [e.key for e in list_source(uri, "", access, start_after="nested/c.csv")] == ["\u00fc.csv"]
    assert list(list_source(uri, "", access, start_after="\u00fc.csv")) == []

    put_objects(s3, bucket, {"landing/nested/d.csv": b"id\n7\n", "landing/0-early.csv": b"id\n8\n"})
    # Only keys after the mark, in key order: a new key that sorts before it is not in this listing.
    assert [e.key for e in list_source(uri, "", access, start_after="nested/c.csv")] == ["nested/d.csv", "\u00fc.csv"]


def test_file_heads_are_the_first_bytes_of_each_object(s3: S3Store) -> None:
    bucket = s3.fresh_bucket()
    large = bytes(range(256)) * (HEAD_LIMIT // 256 + 100)  # longer than one head
    put_objects(s3, bucket, {"landing/large.bin": large, "landing/small.csv": b"id,name\n1,ann\n"})
    heads = file_heads(f"s3://{bucket}/landing/", ["large.bin", "small.csv"], access_to(s3))
    assert heads == {"large.bin": large[:HEAD_LIMIT], "small.csv": b"id,name\n1,ann\n"}


def test_an_endpoint_not_allowlisted_is_refused_before_any_request(s3: S3Store) -> None:
    bucket = s3.fresh_bucket()
    public_only = SourceAccess(s3.endpoint_url, s3.region, s3.access_key, s3.secret_key)
    with pytest.raises(EndpointRefused, match="is not allowed"):
        list(list_source(f"s3://{bucket}/landing/", "", public_only))


async def test_a_run_loads_the_listed_objects_with_spark(s3: S3Store, loading_stack: InProcessStack) -> None:
    """The executor's Spark reads the objects through s3a and commits them to Iceberg."""
    host = urlsplit(s3.endpoint_url).hostname
    if host != "127.0.0.1":
        pytest.skip(f"loading_stack allows S3 endpoints on 127.0.0.1 only; this store is at {host}")
    bucket = s3.fresh_bucket()
    put_objects(s3, bucket, {f"events/part-{n}.csv": f"id,name\n{2 * n},a\n{2 * n + 1},b\n".encode() for n in range(3)})
    table = f"contract.s3_{s3.provider}_{uuid.uuid4().hex[:6]}"
    body: dict[str, Any] = {
        "ingestion_id": f"contract-s3-{uuid.uuid4().hex[:8]}",
        "name": "storage contract on S3",
        "source": {**s3.source(bucket, "events"), "format": "csv", "options": {"header": "true"}},
        "destination": {"table": table},
    }
    async with loading_stack.http(loading_stack.admin_token) as client:
        created = await client.post("/api/v1/ingestions", json=body)
        assert created.status_code == 201, created.text
        queued = await client.post(f"/api/v1/ingestions/{body['ingestion_id']}/run")
        assert queued.status_code == 202, queued.text
    run = await loading_stack.wait_for_run(queued.json()["run_id"], timeout=240)
    assert run["status"] == "SUCCESS", run
    assert (run["files_processed"], run["rows_written"]) == (3, 6), run
    assert await loading_stack.sql(f"SELECT count(*), count(DISTINCT id) FROM {table}") == [["6", "6"]]
