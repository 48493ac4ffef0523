"""Prometheus endpoints of every service, scraped while real runs happen: counters move by exactly the
work done, and the database-backed gauges (backlog, records by status) show the present state."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import grpc
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from autoloader.tracker.v1 import tracker_pb2 as tpb
from autoloader.tracker.v1 import tracker_pb2_grpc as tpb_grpc
from tests.integration.test_run_files import create_ingestion, csv_text, new_table, run_once, write
from tests.support.clock import ShiftedClock
from tests.support.stack import InProcessStack
from tests.support.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape_all(stack: InProcessStack) -> dict[str, Samples]:
    found = {"gateway": await scrape(f"{stack.http_url}/metrics")}
    for name in ("control", "tracker", "executor"):
        endpoint = getattr(stack, name).metrics_endpoint
        assert endpoint is not None, f"{name} serves no metrics"
        found[name] = await scrape(f"http://127.0.0.1:{endpoint.port}/metrics")
    return found


async def test_every_service_counts_a_run_and_the_tracker_shows_the_backlog(
    loading_stack: InProcessStack, webhook_receiver: WebhookReceiver, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    first = write(source / "a.csv", csv_text(range(4)), mtime=1_767_225_600)
    second = write(source / "b.csv", csv_text(range(4, 10)), mtime=1_767_225_700)
    hook = f"/metrics-{tmp_path.name}"
    async with loading_stack.http(loading_stack.admin_token) as client:
        ingestion_id = await create_ingestion(
            client,
            source,
            new_table("metrics"),
            "csv",
            max_files_per_run=1,
            schedule={"cron": "0 * * * *"},
            webhook={"url": webhook_receiver.url(hook), "secret": "metrics-webhook-secret"},
        )
        before = await scrape_all(loading_stack)
        run = await run_once(loading_stack, client, ingestion_id)
        await asyncio.to_thread(webhook_receiver.wait_for, hook)
        await asyncio.sleep(0.5)  # the delivery's attempt is counted right after it is sent
        after = await scrape_all(loading_stack)

    def delta(service: str, name: str, **labels: str) -> float:
        return value(after[service], name, **labels) - value(before[service], name, **labels)

    assert run["status"] == "SUCCESS" and run["files_processed"] == 1
    size = first.stat().st_size
    assert delta("tracker", "autoloader_runs_ended_total", status="SUCCESS") == 1
    assert delta("tracker", "autoloader_files_processed_total") == 1
    assert delta("tracker", "autoloader_bytes_processed_total") == size
    assert delta("tracker", "autoloader_rows_written_total") == 4
    assert delta("tracker", "autoloader_run_duration_seconds_count", status="SUCCESS") == 1
    assert delta("tracker", "autoloader_webhook_delivery_attempts_total", outcome="delivered") == 1
    assert (
        delta(
            "tracker",
            "autoloader_grpc_requests_total",
            method="/autoloader.tracker.v1.TrackerService/FinishRun",
            code="OK",
        )
        == 1
    )
    # b.csv was listed but left by max_files_per_run: it is the backlog.
    assert value(after["tracker"], "autoloader_backlog_files", ingestion_id=ingestion_id) == 1
    assert value(after["tracker"], "autoloader_backlog_bytes", ingestion_id=ingestion_id) == second.stat().st_size
    assert value(after["tracker"], "autoloader_file_records", ingestion_id=ingestion_id, status="PROCESSED") == 1
    assert value(after["tracker"], "autoloader_runs", status="SUCCESS") >= 1
    assert delta("executor", "autoloader_executor_run_seconds_count") == 1
    assert (
        delta(
            "control",
            "autoloader_grpc_requests_total",
            method="/autoloader.control.v1.ControlService/RunIngestion",
            code="OK",
        )
        == 1
    )
    route = "POST /api/v1/ingestions/{ingestion_id}/run"
    assert delta("gateway", "autoloader_http_requests_total", route=route, status="202") == 1
    assert delta("gateway", "autoloader_http_request_duration_seconds_count", route=route) == 1

    clock = loading_stack.clock
    assert isinstance(clock, ShiftedClock)
    clock.advance(timedelta(hours=1))
    await loading_stack.control.background["scheduler"].tick_once()
    ticked = await scrape_all(loading_stack)
    assert value(ticked["control"], "autoloader_schedule_ticks_total", outcome="FIRED") >= 1 + value(
        after["control"], "autoloader_schedule_ticks_total", outcome="FIRED"
    )


async def test_a_lease_takeover_is_counted(stack: InProcessStack, tmp_path: Path) -> None:
    endpoint = stack.tracker.metrics_endpoint
    assert endpoint is not None
    url = f"http://127.0.0.1:{endpoint.port}/metrics"
    metadata = (("authorization", f"Bearer {stack.executor_token}"),)
    async with stack.http(stack.admin_token) as client:
        ingestion_id = await create_ingestion(client, tmp_path, new_table("takeover"), "csv")
        run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
    async with grpc.aio.insecure_channel(stack.tracker.address) as channel:
        tracker = tpb_grpc.TrackerServiceStub(channel)
        before = value(await scrape(url), "autoloader_lease_takeovers_total")
        first = await tracker.ClaimRun(tpb.ClaimRunRequest(executor_id="gone", lease_seconds=5), metadata=metadata)
        assert first.run.run_id == run_id
        assert value(await scrape(url), "autoloader_lease_takeovers_total") == before
        deadline = time.monotonic() + 30
        while True:  # the lease runs out on the database clock
            await asyncio.sleep(0.5)
            second = await tracker.ClaimRun(tpb.ClaimRunRequest(executor_id="heir", lease_seconds=5), metadata=metadata)
            if second.claimed:
                break
            assert time.monotonic() < deadline
        assert (second.run.run_id, second.lease_epoch) == (run_id, first.lease_epoch + 1)
        assert value(await scrape(url), "autoloader_lease_takeovers_total") == before + 1
        await tracker.CancelRun(tpb.CancelRunRequest(run_id=run_id), metadata=metadata)
        ended = await tracker.FinishRun(
            tpb.FinishRunRequest(run_id=run_id, lease_epoch=second.lease_epoch, cancelled=True), metadata=metadata
        )
        assert ended.run.status == "CANCELLED"
