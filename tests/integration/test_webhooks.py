"""Webhooks on run completion, through the real services: a receiver on an allowlisted loopback port gets
each ended run, signed; failures are retried with backoff; forbidden targets are refused when saved and
when sent."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from autoloader.tracker.v1 import tracker_pb2 as tpb
from autoloader.tracker.v1 import tracker_pb2_grpc as tpb_grpc
from services.shared.webhook_signature import SIGNATURE_HEADER, verify
from tests.integration.test_run_files import create_ingestion, csv_text, new_table, run_once, uid, write
from tests.support.stack import InProcessStack
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

SECRET = "s3cret-for-webhook-tests"


def webhook(receiver: WebhookReceiver, path: str, **extra: Any) -> dict[str, Any]:
    return {"webhook": {"url": receiver.url(path), "secret": SECRET, **extra}}


async def deliveries(client: httpx.AsyncClient, ingestion_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/ingestions/{ingestion_id}/webhook-deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json().get("deliveries", [])
    return found


async def settled(client: httpx.AsyncClient, ingestion_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """The deliveries once none is PENDING any more."""
    deadline = time.monotonic() + timeout
    while True:
        found = await deliveries(client, ingestion_id)
        if found and all(d["status"] != "PENDING" for d in found):
            return found
        assert time.monotonic() < deadline, f"deliveries still pending: {found}"
        await asyncio.sleep(0.2)


async def test_a_completed_run_reaches_the_allowlisted_receiver_signed(
    loading_stack: InProcessStack, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    write(tmp_path / "src" / "a.csv", csv_text(range(5)))
    path = f"/hook-{uid()}"
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, tmp_path / "src", new_table("hooked"), "csv", **webhook(webhook_receiver, path)
        )
        shown = (await client.get(f"/api/v1/ingestions/{ingestion_id}")).json()["webhook"]
        assert shown == {"url": webhook_receiver.url(path), "secret": "****", "max_attempts": 6}
        run = await run_once(loading_stack, client, ingestion_id)
        assert run["status"] == "SUCCESS", run

        [received] = await asyncio.to_thread(webhook_receiver.wait_for, path)
        assert verify(SECRET, received.headers[SIGNATURE_HEADER], received.body, now=int(time.time()))
        assert not verify(
            "another-secret-of-16+", received.headers[SIGNATURE_HEADER], received.body, now=int(time.time())
        )
        assert not verify(SECRET, received.headers[SIGNATURE_HEADER], received.body + b" ", now=int(time.time()))
        body = json.loads(received.body)
        assert body["event"] == "run.completed" == received.headers["Autoloader-Event"]
        assert body["run"] == (await client.get(f"/api/v1/runs/{run['run_id']}")).json()
        assert (body["run"]["status"], body["run"]["rows_written"]) == ("SUCCESS", 5)
        assert received.headers["Content-Type"] == "application/json"

        [delivery] = await settled(client, ingestion_id)
        assert delivery["delivery_id"] == received.headers["Autoloader-Delivery"]
        assert (delivery["status"], delivery["run_id"], delivery["url"]) == (
            "DELIVERED",
            run["run_id"],
            webhook_receiver.url(path),
        )
        assert [a["status_code"] for a in delivery["attempts"]] == [200]
        assert "secret" not in json.dumps(delivery)


async def test_failed_deliveries_are_retried_with_growing_waits(
    loading_stack: InProcessStack, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    write(tmp_path / "src" / "a.csv", csv_text(range(2)))
    path = f"/flaky-{uid()}"
    webhook_receiver.failures.extend([500, 503])
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, tmp_path / "src", new_table("flaky"), "csv", **webhook(webhook_receiver, path)
        )
        await run_once(loading_stack, client, ingestion_id)
        [delivery] = await settled(client, ingestion_id)
    assert delivery["status"] == "DELIVERED", delivery
    attempts = delivery["attempts"]
    assert [(a["status_code"], a["error"]) for a in attempts] == [(500, "HTTP 500"), (503, "HTTP 503"), (200, "")]
    times = [datetime.fromisoformat(a["attempt_time"].replace("Z", "+00:00")) for a in attempts]
    waits = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    # The stack's backoff base is 0.5 s: 0.5 s after the first failure, 1 s after the second.
    assert waits[0] >= 0.5 and waits[1] >= 1.0, waits
    assert len(await asyncio.to_thread(webhook_receiver.wait_for, path, 3)) == 3


async def test_a_delivery_is_given_up_after_max_attempts(
    loading_stack: InProcessStack, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    write(tmp_path / "src" / "a.csv", csv_text(range(2)))
    path = f"/down-{uid()}"
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, tmp_path / "src", new_table("down"), "csv", **webhook(webhook_receiver, path, max_attempts=2)
        )
        webhook_receiver.failures.extend([502, 502, 502])
        await run_once(loading_stack, client, ingestion_id)
        [delivery] = await settled(client, ingestion_id)
        webhook_receiver.failures.clear()
    assert delivery["status"] == "FAILED"
    assert [a["status_code"] for a in delivery["attempts"]] == [502, 502]
    assert "next_attempt_time" not in delivery


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost:9/hook", "loopback"),
        ("http://2130706433/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[::1]:9/hook", "loopback"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("ftp://example.com/hook", "http:// or https://"),
        ("http://user:pw@example.com/hook", "user name or password"),
    ],
)
async def test_forbidden_webhook_targets_are_refused_when_saved(
    loading_stack: InProcessStack, tmp_path: Path, url: str, reason: str
) -> None:
    async with loading_stack.http(loading_stack.admin_token) as client:
        response = await client.post(
            "/api/v1/ingestions",
            json={
                "name": "ssrf",
                "source": {"uri": tmp_path.as_uri() + "/", "format": "csv"},
                "destination": {"table": new_table("ssrf")},
                "webhook": {"url": url, "secret": SECRET},
            },
        )
    assert response.status_code == 400, response.text
    violations = [v for d in response.json()["details"] for v in d.get("field_violations", [])]
    [violation] = [v for v in violations if v["field"] == "webhook.url"]
    assert reason in violation["description"], violation


async def test_only_the_allowlisted_loopback_port_is_allowed(
    loading_stack: InProcessStack, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    base = {"name": "port", "source": {"uri": tmp_path.as_uri() + "/", "format": "csv"}}
    async with loading_stack.http(loading_stack.admin_token) as client:
        allowed = await client.post(
            "/api/v1/ingestions",
            json={**base, "destination": {"table": new_table("p")}, **webhook(webhook_receiver, "/ok")},
        )
        other_port = await client.post(
            "/api/v1/ingestions",
            json={
                **base,
                "destination": {"table": new_table("p")},
                "webhook": {"url": f"http://127.0.0.1:{webhook_receiver.port + 1}/", "secret": SECRET},
            },
        )
    assert allowed.status_code == 201, allowed.text
    assert other_port.status_code == 400 and "loopback" in other_port.text


async def test_the_masked_secret_written_back_keeps_the_stored_one(
    loading_stack: InProcessStack, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    write(tmp_path / "src" / "a.csv", csv_text(range(1)))
    path = f"/masked-{uid()}"
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client, tmp_path / "src", new_table("masked"), "csv", **webhook(webhook_receiver, path)
        )
        current = (await client.get(f"/api/v1/ingestions/{ingestion_id}")).json()
        patched = await client.patch(
            f"/api/v1/ingestions/{ingestion_id}", json={"webhook": {**current["webhook"], "max_attempts": 3}}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["webhook"] == {**current["webhook"], "max_attempts": 3}
        await run_once(loading_stack, client, ingestion_id)
        [received] = await asyncio.to_thread(webhook_receiver.wait_for, path)
    assert verify(SECRET, received.headers[SIGNATURE_HEADER], received.body, now=int(time.time()))


async def test_a_forbidden_target_is_refused_at_send_time_without_retries(
    loading_stack: InProcessStack, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    """A run whose frozen configuration names a loopback port outside the allowlist (as if the save-time check
    had been bypassed, or DNS now answers differently): the tracker refuses to send, once, and says why."""
    write(tmp_path / "src" / "a.csv", csv_text(range(1)))
    ingestion_id = f"direct-{uid()}"
    config = struct_pb2.Struct()
    config.update(
        {
            "ingestion_id": ingestion_id,
            "source": {"uri": (tmp_path / "src").as_uri() + "/", "format": "csv", "options": {"header": "true"}},
            "destination": {"table": new_table("direct")},
            "webhook": {"url": f"http://127.0.0.1:{webhook_receiver.port + 1}/x", "secret": SECRET},
        }
    )
    async with grpc.aio.insecure_channel(loading_stack.tracker.address) as channel:
        created = await tpb_grpc.TrackerServiceStub(channel).CreateRun(
            tpb.CreateRunRequest(ingestion_id=ingestion_id, ingestion=config, trigger="manual"),
            metadata=(("authorization", f"Bearer {loading_stack.admin_token}"),),
        )
        run = await loading_stack.wait_for_run(created.run.run_id)
        assert run["status"] == "SUCCESS", run
        deadline = time.monotonic() + 30
        while True:
            listed = await tpb_grpc.TrackerServiceStub(channel).ListDeliveries(
                tpb.ListDeliveriesRequest(ingestion_id=ingestion_id),
                metadata=(("authorization", f"Bearer {loading_stack.admin_token}"),),
            )
            if listed.deliveries and listed.deliveries[0].status != "PENDING":
                break
            assert time.monotonic() < deadline, listed
            await asyncio.sleep(0.2)
    [delivery] = listed.deliveries
    assert delivery.status == "FAILED"
    assert [(a.status_code, a.error.startswith("refused:"), "loopback" in a.error) for a in delivery.attempts] == [
        (0, True, True)
    ]
