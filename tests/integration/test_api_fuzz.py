"""Fuzzing the HTTP API from its own OpenAPI document: generated requests, valid and invalid, never get a 5xx.

schemathesis reads /api/v1/openapi.json from the real gateway and generates requests for every documented
operation, both conforming to the document (positive) and violating it (negative), sent with an admin token.
Every answer must be below 500 and, as far as the document describes it, conform to the documented statuses,
content types and schemas. Failures are collected rather than shrunk, so one run reports all of them with a
curl command to reproduce each.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

# Per operation and generation mode: 19 operations x 2 modes x 32 is well over 1,000 requests, in about a minute.
EXAMPLES = 32
MIN_REQUESTS = 1_000
REQUEST_TIMEOUT_SECONDS = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Operations whose path parameter is sometimes the seeded ingestion, so generated bodies and queries reach the
# service's checks instead of stopping at 404. Left out: DeleteIngestion (it would remove the seed), and
# PreviewIngestion and ClearProcessedFiles (dry_run), which wait for an executor's listing; this stack runs
# none, so on an existing ingestion they would each take the fixture's 2 s preview timeout and a preview would
# end in the documented 504 instead of testing input handling.
SEEDED_OPERATIONS = {
    "GetIngestion",
    "UpdateIngestion",
    "RunIngestion",
    "ListIngestionRuns",
    "ListProcessedFiles",
    "GetIngestionSchema",
    "ListScheduleTicks",
    "ListWebhookDeliveries",
}
# The one 5xx that is the documented answer, not a fault: a preview no executor answered (README, HTTP API).
# Only an ingestion created by a generated request could get there (generated ids never match the seed).
NO_EXECUTOR = ("PreviewIngestion", 504)


@dataclass
class FuzzReport:
    statuses: Counter[int] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    by_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    server_errors: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    no_negative: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


def _strategy(operation: Any, mode: GenerationMode, seed_id: str) -> Any:
    strategy = operation.as_strategy(generation_mode=mode)
    if operation.definition.raw["operationId"] in SEEDED_OPERATIONS:
        seeded = operation.as_strategy(generation_mode=mode, path_parameters={"ingestion_id": seed_id})
        strategy = st.one_of(strategy, seeded)
    return strategy


def _run_operation(
    operation: Any, mode: GenerationMode, seed_id: str, base_url: str, headers: dict[str, str], report: FuzzReport
) -> None:
    name = operation.definition.raw["operationId"]
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same requests every run, so a failure reproduces
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, mode, seed_id))
    def send(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS)
        report.statuses[response.status_code] += 1
        report.by_operation[name] += 1
        report.by_status[(name, response.status_code)] += 1
        if response.status_code >= 500:
            report.server_errors[(name, response.status_code)] += 1
        if (name, response.status_code) == NO_EXECUTOR:
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as error:  # a check failed: keep going, report them all at the end
            report.failures.append(
                f"{name} -> {response.status_code}: {error}\n{case.as_curl_command(headers=headers)}"
            )

    try:
        send()
    except Unsatisfiable:
        # Nothing to violate: an operation without parameters or body has no invalid requests.
        assert mode == GenerationMode.NEGATIVE, f"{name}: no valid request could be generated"
        report.no_negative.append(name)


def fuzz(base_url: str, token: str, seed_id: str) -> FuzzReport:
    """Blocking: run in a thread, since the gateway answers from the test's event loop."""
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json", headers=headers, timeout=10)
    report = FuzzReport()
    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            started = time.monotonic()
            _run_operation(result.ok(), mode, seed_id, base_url, headers, report)
            print(f"{result.ok().label} {mode.value}: {time.monotonic() - started:.1f}s", flush=True)
    return report


async def _cancel_queued_runs(client: Any, ingestion_id: str) -> None:
    """Runs the fuzzing queued must not be picked up by executors other tests start on this stack."""
    runs = (await client.get(f"/api/v1/ingestions/{ingestion_id}/runs", params={"page_size": 100})).json()
    for run in runs.get("runs", []):
        if run["status"] in ("QUEUED", "RUNNING"):
            await client.post(f"/api/v1/runs/{run['run_id']}/cancel", json={})


async def test_generated_requests_get_no_server_errors(stack: InProcessStack) -> None:
    seed_id = f"fuzz-{uuid.uuid4().hex[:12]}"
    async with stack.http(stack.admin_token) as client:
        created = await client.post(
            "/api/v1/ingestions",
            json={
                "ingestion_id": seed_id,
                "name": "fuzzing seed",
                "source": {"uri": "file:///nonexistent/fuzz/", "format": "csv"},
                "destination": {"table": "fuzz.seed"},
            },
        )
        assert created.status_code == 201, created.text
        try:
            report = await asyncio.to_thread(fuzz, stack.http_url, stack.admin_token, seed_id)
        finally:
            await _cancel_queued_runs(client, seed_id)
            await client.delete(f"/api/v1/ingestions/{seed_id}")

    print(f"\n{report.requests} requests; statuses {dict(sorted(report.statuses.items()))}")
    print(f"per operation {dict(sorted(report.by_status.items()))}")
    assert report.requests >= MIN_REQUESTS
    server_errors = {key: n for key, n in report.server_errors.items() if key != NO_EXECUTOR}
    assert not server_errors, "\n\n".join(report.failures)
    assert not report.failures, f"{len(report.failures)} failed checks:\n\n" + "\n\n".join(report.failures[:20])
