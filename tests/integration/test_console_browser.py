"""The web console in a real browser against the real stack: create an ingestion, run it, see SUCCESS with the
right row count in the Runs tab, and clear its processed files through the confirmation.

tests/browser/console_flow.mjs drives headless Chromium; this test prepares the source, starts it, and checks
both what the page showed and, through the API, that the page really did it. Screenshots are kept in
test-artifacts/console/.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.runs import write_csv
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FLOW = ROOT / "tests" / "browser" / "console_flow.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def browser_missing() -> str:
    """Why the browser test cannot run here ('' when it can). CI installs both (.ci/run and npm)."""
    if not Path(CHROMIUM).exists():
        return "Debian's chromium is not installed (apt-get install chromium)"
    if not (ROOT / "node_modules" / "playwright-core").is_dir():
        return "playwright-core is not installed (npm install)"
    if shutil.which("node") is None:
        return "node is not on PATH"
    return ""


async def drive_console(stack: InProcessStack, source: Path, ingestion_id: str, table: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "BASE_URL": stack.http_url,
        "TOKEN": stack.admin_token,
        "SOURCE_URI": source.as_uri() + "/",
        "INGESTION_ID": ingestion_id,
        "TABLE": table,
        "ARTIFACTS": str(ARTIFACTS),
        "CHROMIUM": CHROMIUM,
    }
    # A subprocess of this event loop, which keeps serving the in-process stack the browser talks to.
    process = await asyncio.create_subprocess_exec(
        "node", str(FLOW), cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=300)
    lines = stdout.decode().strip().splitlines()
    assert lines, f"the browser flow printed nothing; stderr: {stderr.decode()[-2000:]}"
    seen: dict[str, Any] = json.loads(lines[-1])
    assert process.returncode == 0, f"{seen.get('failure')}\nseen: {seen}\nstderr: {stderr.decode()[-2000:]}"
    return seen


async def test_a_user_creates_runs_and_clears_an_ingestion_in_the_console(
    loading_stack: InProcessStack, tmp_path: Path
) -> None:
    missing = browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the console's browser test must run in CI: {missing}")
        pytest.skip(missing)
    source = tmp_path / "users"
    write_csv(source, "part-1.csv", rows=3)
    write_csv(source, "part-2.csv", rows=2, start=3)
    ingestion_id = f"console-{uuid.uuid4().hex[:8]}"
    table = f"analytics.console_{uuid.uuid4().hex[:6]}"

    seen = await drive_console(loading_stack, source, ingestion_id, table)

    # The browser reports every non-2xx answer. Expected: the 400 for the invalid source, the 409 for the run
    # asked of a paused ingestion.
    expected = ("status of 400", "status of 409")
    unexpected = [e for e in seen["consoleErrors"] if not any(status in e for status in expected)]
    assert seen["pageErrors"] == [] and unexpected == [], seen
    assert seen["caller"].endswith("(admin)")
    assert seen["violation"].startswith("source.uri: ")
    assert seen["created"] == f"Created {ingestion_id}."
    assert (seen["runStatus"], seen["runRows"], seen["runFiles"]) == ("SUCCESS", "5", "2 / 2")
    assert seen["chartBars"] == 2  # one run: a rows bar and a files bar
    assert seen["preview"].startswith("Would load 0 files"), seen["preview"]
    assert "paused" in seen["pausedRun"], seen["pausedRun"]
    assert seen["saved"] == "Saved."
    assert sorted(seen["files"], key=lambda f: f["key"]) == [
        {"key": "part-1.csv", "status": "PROCESSED"},
        {"key": "part-2.csv", "status": "PROCESSED"},
    ]
    assert seen["searched"] == "part-1.csv"
    assert seen["confirmation"].startswith("This forgets 2 file records")
    assert "2 of them" in seen["confirmation"] and "loads them again" in seen["confirmation"]
    assert table in seen["warning"] and "twice" in seen["warning"]
    assert seen["cleared"] == "Cleared 2 processed file records"
    assert seen["filesAfterClear"] == 0
    assert seen["selectedAfterArrow"] == "Runs"
    # The page did what it showed: one run of 5 rows, and no file records left.
    async with loading_stack.http(loading_stack.admin_token) as api:
        runs = (await api.get(f"/api/v1/ingestions/{ingestion_id}/runs")).json()["runs"]
        files = (await api.get(f"/api/v1/ingestions/{ingestion_id}/processed-files")).json()
        ingestion = (await api.get(f"/api/v1/ingestions/{ingestion_id}")).json()
    assert [(r["status"], r["rows_written"]) for r in runs] == [("SUCCESS", 5)]  # the paused click ran nothing
    assert (ingestion["name"], ingestion["enabled"]) == ("Users, renamed", True)
    assert files["processed_files"] == []
    assert (ARTIFACTS / "3-runs.png").stat().st_size > 0
