"""Small helpers shared by the run tests: sample files, an ingestion over them, one run to its end."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.support.stack import InProcessStack


def write_csv(directory: Path, name: str, rows: int, start: int = 0) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["id,name"] + [f"{i},user-{i}" for i in range(start, start + rows)]
    (directory / name).write_text("\n".join(lines) + "\n")


async def create_ingestion(client: httpx.AsyncClient, source: Path, table: str, **extra: Any) -> str:
    ingestion_id = f"local-{uuid.uuid4().hex[:8]}"
    body = {
        "ingestion_id": ingestion_id,
        "name": "local csv",
        "source": {"uri": source.as_uri() + "/", "format": "csv", "options": {"header": "true"}},
        "destination": {"table": table},
        **extra,
    }
    response = await client.post("/api/v1/ingestions", json=body)
    assert response.status_code == 201, response.text
    return ingestion_id


async def run_once(stack: InProcessStack, client: httpx.AsyncClient, ingestion_id: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/ingestions/{ingestion_id}/run")
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "QUEUED"
    return await stack.wait_for_run(response.json()["run_id"])
