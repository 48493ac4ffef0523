"""Sources' custom S3 endpoints cannot lead the services to internal addresses (SSRF), through the real stack.

Both test stacks allow 127.0.0.1 (where moto listens) and nothing else: control refuses other internal
endpoints when an ingestion is saved, and an executor whose allowlist lacks an endpoint refuses it before
it lists or reads the source, so the run (or preview) fails and nothing is loaded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.executors import start_executor, stop, wait_for_log
from tests.support.s3 import S3Server, running_s3_server
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

INGESTIONS = "/api/v1/ingestions"
ALLOWLIST_VARIABLE = "AUTOLOADER_ENDPOINT_ALLOWLIST"


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


def ingestion_body(source: dict[str, Any], table: str) -> dict[str, Any]:
    return {
        "ingestion_id": f"ssrf-{uuid.uuid4().hex[:8]}",
        "name": "ssrf check",
        "source": {"format": "csv", "options": {"header": "true"}, **source},
        "destination": {"table": table},
    }


def s3_source(endpoint_url: str) -> dict[str, Any]:
    return {"uri": "s3://landing/users/", "endpoint_url": endpoint_url, "region": "us-east-1"}


def endpoint_violation(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    violations = [v for d in response.json()["details"] for v in d.get("field_violations", [])]
    [violation] = [v for v in violations if v["field"] == "source.endpoint_url"]
    description: str = violation["description"]
    return description


@pytest.mark.parametrize(
    ("endpoint_url", "reason"),
    [
        ("http://127.0.0.2:9000", "127.0.0.2 is a loopback address"),  # loopback, but not the allowlisted one
        ("http://[::1]:9000", "::1 is a loopback address"),
        ("http://10.0.0.5:9000", "10.0.0.5 is a private address"),
        ("http://192.168.1.20:9000", "192.168.1.20 is a private address"),
        ("http://[fd12:3456::1]:9000", "fd12:3456::1 is a private address"),
        ("http://169.254.169.254", "169.254.169.254 is a link-local (cloud metadata) address"),
        ("http://[fd00:ec2::254]", "cloud metadata"),
        ("http://metadata.google.internal", "host metadata.google.internal is a cloud metadata service"),
        ("http://0.0.0.0:9000", "0.0.0.0 is an unspecified address"),
        ("http://224.0.0.1:9000", "224.0.0.1 is a multicast address"),
        # 127.0.0.1 is allowlisted, but only written as 127.0.0.1.
        ("http://2130706433:9000", "non-standard form"),
        ("http://0177.0.0.1:9000", "non-standard form"),
        ("http://0x7f.1:9000", "non-standard form"),
        ("http://127.1:9000", "non-standard form"),
    ],
)
async def test_create_refuses_internal_endpoints_and_stores_nothing(
    stack: InProcessStack, endpoint_url: str, reason: str
) -> None:
    body = ingestion_body(s3_source(endpoint_url), "ssrf.refused")
    async with stack.http(stack.admin_token) as client:
        description = endpoint_violation(await client.post(INGESTIONS, json=body))
        assert description.startswith("is not allowed: ") and reason in description, description
        assert (await client.get(f"{INGESTIONS}/{body['ingestion_id']}")).status_code == 404


async def test_patch_refuses_an_internal_endpoint_and_keeps_the_stored_one(stack: InProcessStack, s3: S3Server) -> None:
    body = ingestion_body(s3.source("landing", "users"), "ssrf.patched")
    async with stack.http(stack.admin_token) as client:
        created = await client.post(INGESTIONS, json=body)
        assert created.status_code == 201, created.text  # moto on 127.0.0.1: allowlisted
        url = f"{INGESTIONS}/{body['ingestion_id']}"
        for endpoint_url in ("http://169.254.169.254", "http://127.0.0.2:9000", "http://2130706433:9000"):
            response = await client.patch(url, json={"source": {"endpoint_url": endpoint_url}})
            assert "is not allowed" in endpoint_violation(response)
        stored = (await client.get(url)).json()
        assert stored["source"]["endpoint_url"] == s3.endpoint_url
        assert stored["update_time"] == created.json()["update_time"]


async def test_a_run_loads_from_an_allowlisted_endpoint(loading_stack: InProcessStack, s3: S3Server) -> None:
    bucket = s3.create_bucket()
    s3.put_object(bucket, "users/a.csv", "id,name\n1,ann\n2,bob\n")
    s3.put_object(bucket, "users/b.csv", "id,name\n3,cid\n")
    table = f"ssrf.allowed_{uuid.uuid4().hex[:6]}"
    body = ingestion_body(s3.source(bucket, "users"), table)
    async with loading_stack.http(loading_stack.admin_token) as client:
        created = await client.post(INGESTIONS, json=body)
        assert created.status_code == 201, created.text
        queued = await client.post(f"{INGESTIONS}/{body['ingestion_id']}/run")
        assert queued.status_code == 202, queued.text
    run = await loading_stack.wait_for_run(queued.json()["run_id"])
    assert (run["status"], run["files_processed"], run["rows_written"]) == ("SUCCESS", 2, 3), run
    assert await loading_stack.sql(f"SELECT count(*) FROM {table}") == [["3"]]


async def test_an_executor_refuses_an_endpoint_its_allowlist_lacks(
    stack: InProcessStack, s3: S3Server, tmp_path: Path
) -> None:
    """Saved while control allowed it; this executor allows only 127.0.0.2, so moto's 127.0.0.1 is refused."""
    bucket = s3.create_bucket()
    s3.put_object(bucket, "users/a.csv", "id,name\n1,ann\n")
    body = ingestion_body(s3.source(bucket, "users"), f"ssrf.refused_{uuid.uuid4().hex[:6]}")
    home = tmp_path / "executor"
    process = start_executor(stack, home, str(tmp_path / "warehouse"), {ALLOWLIST_VARIABLE: "127.0.0.2"})
    try:
        await asyncio.to_thread(wait_for_log, home, "spark ready")
        async with stack.http(stack.admin_token) as client:
            created = await client.post(INGESTIONS, json=body)
            assert created.status_code == 201, created.text
            url = f"{INGESTIONS}/{body['ingestion_id']}"

            preview = await previewed(client, url)
            assert preview.status_code == 400, preview.text
            assert_refusal(preview.json()["message"], s3)

            queued = await client.post(f"{url}/run")
            assert queued.status_code == 202, queued.text
            run = await stack.wait_for_run(queued.json()["run_id"])
            assert run["status"] == "FAILED", run
            assert_refusal(run["error"], s3)
            # Refused before listing: no file was discovered, recorded or loaded.
            assert (run.get("files_discovered", 0), run.get("rows_written", 0)) == (0, 0), run
            assert "snapshot_id" not in run, run
            files = await client.get(f"{url}/processed-files")
            assert files.status_code == 200 and files.json()["processed_files"] == [], files.text
    finally:
        await asyncio.to_thread(stop, [process])


async def previewed(client: httpx.AsyncClient, url: str, attempts: int = 10) -> httpx.Response:
    """The preview's answer; the test stack waits only 2 s for one, which a busy executor may miss (504)."""
    for _ in range(attempts):
        response = await client.get(f"{url}/preview")
        if response.status_code != 504:
            break
    return response


def assert_refusal(message: str, s3: S3Server) -> None:
    assert f"source.endpoint_url {s3.endpoint_url} is not allowed" in message, message
    assert "127.0.0.1 is a loopback address" in message, message
    assert ALLOWLIST_VARIABLE in message, message
