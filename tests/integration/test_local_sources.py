"""file:// sources cannot read the services' own state: refused when saved, and again by the executor, which
follows symbolic links the control service cannot see."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.runs import create_ingestion, run_once, write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


def body(uri: str) -> dict[str, Any]:
    return {
        "ingestion_id": f"local-{uuid.uuid4().hex[:8]}",
        "name": "reads the home",
        "source": {"uri": uri, "format": "text"},
        "destination": {"table": "raw.stolen"},
    }


async def test_a_source_in_or_above_the_home_directory_is_refused_when_saved(stack: InProcessStack) -> None:
    assert stack.home is not None
    async with stack.http(stack.admin_token) as admin:
        for uri in (stack.home.as_uri() + "/", stack.home.parent.as_uri() + "/"):
            created = body(uri)
            response = await admin.post("/api/v1/ingestions", json=created)
            assert response.status_code == 400, response.text
            violation = response.json()["details"][0]["field_violations"][0]
            assert violation["field"] == "source.uri"
            assert "home directory" in violation["description"]
            assert (await admin.get(f"/api/v1/ingestions/{created['ingestion_id']}")).status_code == 404


async def test_a_link_to_the_admin_token_fails_the_run_and_loads_nothing(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    assert loading_stack.home is not None
    source = tmp_path / "landing"
    write_csv(source, "a.csv", rows=2)
    (source / "b.csv").symlink_to(loading_stack.home / "admin-token")
    table = f"raw.stolen_{uuid.uuid4().hex[:6]}"

    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, source, table)  # the path alone is harmless
        run = await run_once(loading_stack, client, ingestion_id)
        files = (await client.get(f"/api/v1/ingestions/{ingestion_id}/processed-files")).json()

    assert run["status"] == "FAILED", run
    assert "home directory" in run["error"]
    assert run.get("rows_written", "0") in (0, "0")
    assert files["processed_files"] == []
    token = (loading_stack.home / "admin-token").read_text().strip()
    assert token not in run["error"]
