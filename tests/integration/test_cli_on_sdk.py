"""The `autoloader` command on the SDK: its output, error lines and exit codes, through the real stack.

The CLI is synchronous and the services share this event loop: it runs on another thread.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from autoloader.cli.main import app as cli_app
from tests.support.runs import write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def use_stack(monkeypatch: pytest.MonkeyPatch, stack: InProcessStack, home: Path) -> None:
    monkeypatch.setenv("AUTOLOADER_HOME", str(home))  # not the machine's ~/.autoloader
    monkeypatch.setenv("AUTOLOADER_CONTROL_ADDRESS", stack.control.address)
    monkeypatch.setenv("AUTOLOADER_EXECUTOR_ADDRESS", stack.executor.address)
    monkeypatch.setenv("AUTOLOADER_TOKEN", stack.admin_token)
    for variable in ("AUTOLOADER_TLS_CA_FILE", "AUTOLOADER_TLS_CERT_FILE", "AUTOLOADER_TLS_KEY_FILE"):
        monkeypatch.delenv(variable, raising=False)


async def cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli_app, list(args))


def write_config(directory: Path, body: dict[str, Any]) -> str:
    path = directory / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(body))
    return str(path)


async def test_commands_print_their_results_and_errors(
    stack: InProcessStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_stack(monkeypatch, stack, tmp_path)
    ingestion_id = unique("cli")
    source = tmp_path / "in"
    source.mkdir()
    good = write_config(
        tmp_path,
        {
            "ingestion_id": ingestion_id,
            "name": "cli",
            "source": {"uri": source.as_uri() + "/", "format": "csv"},
            "destination": {"table": "cli.users"},
        },
    )
    bad = write_config(tmp_path, {"name": "bad", "source": {"uri": source.as_uri() + "/", "format": "xls"}})
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")

    created = await cli("ingestions", "create", "--file", good)
    listed = await cli("ingestions", "list")
    fetched = await cli("ingestions", "get", ingestion_id)
    missing = await cli("ingestions", "get", unique("missing"))
    invalid = await cli("ingestions", "create", "--file", bad)
    broken = await cli("ingestions", "create", "--file", str(not_json))
    runs = await cli("runs", ingestion_id)
    files = await cli("files", ingestion_id)
    cleared = await cli("clear-processed-files", ingestion_id)
    tokens = await cli("token", "list")
    bad_role = await cli("token", "create", "--name", "x", "--role", "owner")
    deleted = await cli("ingestions", "delete", ingestion_id)

    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["ingestion_id"] == ingestion_id
    assert f"{ingestion_id}  csv     {source.as_uri()}/ -> cli.users  (enabled, owner " in listed.stdout
    assert json.loads(fetched.stdout)["destination"]["table"] == "cli.users"
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error (NOT_FOUND): ")
    assert invalid.exit_code == 1
    lines = invalid.stderr.splitlines()
    assert lines[0] == "error (INVALID_ARGUMENT): invalid request"
    assert any(line.startswith("  source.format: ") for line in lines[1:]), lines
    assert broken.exit_code == 2 and "is not valid JSON" in broken.stderr
    assert runs.exit_code == 0 and runs.stdout.split() == ["RUN", "STATUS", "FILES", "FAILED", "ROWS", "STARTED"]
    assert files.exit_code == 0 and files.stdout == ""
    assert cleared.stdout.strip() == "Cleared 0 processed file records"
    assert tokens.exit_code == 0 and tokens.stdout.strip()
    assert bad_role.exit_code == 2
    assert deleted.exit_code == 0, deleted.output


async def test_without_a_stack_the_command_says_how_to_find_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOLOADER_HOME", str(tmp_path))
    monkeypatch.delenv("AUTOLOADER_CONTROL_ADDRESS", raising=False)

    result = await cli("ingestions", "list")

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: no running stack found: start one with `autoloader up` or set AUTOLOADER_CONTROL_ADDRESS"
    )


async def test_run_wait_exits_4_when_the_run_is_cancelled(
    stack: InProcessStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_stack(monkeypatch, stack, tmp_path)
    ingestion_id = unique("cli-cancel")
    body = {
        "ingestion_id": ingestion_id,
        "name": "cancelled",
        "source": {"uri": tmp_path.as_uri() + "/", "format": "csv"},
        "destination": {"table": "cli.cancelled"},
    }
    async with stack.http(stack.admin_token) as http:
        assert (await http.post("/api/v1/ingestions", json=body)).status_code == 201
        waiting = asyncio.create_task(cli("run", ingestion_id, "--wait"))
        # No executor takes runs in this stack: the run stays QUEUED until it is cancelled.
        for _ in range(100):
            runs = (await http.get(f"/api/v1/ingestions/{ingestion_id}/runs")).json()["runs"]
            if runs:
                break
            await asyncio.sleep(0.1)
        assert (await http.post(f"/api/v1/runs/{runs[0]['run_id']}/cancel")).status_code == 200
        result = await asyncio.wait_for(waiting, timeout=30)

    assert result.exit_code == 4, result.output
    assert json.loads(result.stdout)["status"] == "CANCELLED"
    assert f"{runs[0]['run_id']} QUEUED: 0/0 files" in result.stderr


async def test_run_wait_exits_0_on_success(
    loading_stack: InProcessStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_stack(monkeypatch, loading_stack, tmp_path)
    source = tmp_path / "users"
    write_csv(source, "part-0.csv", rows=4)
    ingestion_id = unique("cli-run")
    table = f"itest.cli_{uuid.uuid4().hex[:6]}"
    good = write_config(
        tmp_path,
        {
            "ingestion_id": ingestion_id,
            "name": "cli run",
            "source": {"uri": source.as_uri() + "/", "format": "csv", "options": {"header": "true"}},
            "destination": {"table": table},
        },
    )

    assert (await cli("ingestions", "create", "--file", good)).exit_code == 0
    finished = await cli("run", ingestion_id, "--wait")
    counted = await cli("sql", f"SELECT count(*) FROM {table}")

    assert finished.exit_code == 0, finished.output
    assert json.loads(finished.stdout)["rows_written"] == 4
    assert counted.stdout.splitlines()[1:] == ["4"]
