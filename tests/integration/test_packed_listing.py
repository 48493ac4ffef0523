"""The packed listing (tab-separated lines loaded with one COPY) through the real tracker: odd keys survive
exactly, a file listed twice is planned once, and malformed lines are refused naming the field."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
import pytest_asyncio
from google.protobuf import struct_pb2

from autoloader.tracker.v1 import tracker_pb2 as tpb
from autoloader.tracker.v1 import tracker_pb2_grpc as tpb_grpc
from services.tracker.listing_format import pack
from services.tracker.models import FileEntry
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

MOMENT = datetime(2026, 1, 1, tzinfo=UTC)
ODD_KEYS = ["plain.csv", "tab\there.csv", "new\nline.csv", "back\\slash.csv", "cr\rx.csv", "ünï %20 *?[a].csv", "\\N"]


Metadata = tuple[tuple[str, str], ...]


@pytest_asyncio.fixture(loop_scope="session")
async def tracker(stack: InProcessStack) -> AsyncIterator[tpb_grpc.TrackerServiceStub]:
    async with grpc.aio.insecure_channel(stack.tracker.address) as channel:
        yield tpb_grpc.TrackerServiceStub(channel)


async def claimed_run(
    stack: InProcessStack, stub: tpb_grpc.TrackerServiceStub
) -> tuple[tpb.ClaimRunResponse, Metadata]:
    metadata = (("authorization", f"Bearer {stack.executor_token}"),)
    ingestion_id = f"packed-{uuid.uuid4().hex[:8]}"
    config = struct_pb2.Struct()
    config.update({"ingestion_id": ingestion_id, "destination": {"table": "packed.t"}})
    created = await stub.CreateRun(
        tpb.CreateRunRequest(ingestion_id=ingestion_id, ingestion=config, trigger="manual"), metadata=metadata
    )
    while True:  # the stack may hold older queued runs: claim until ours comes
        claim = await stub.ClaimRun(tpb.ClaimRunRequest(executor_id="packed-test", lease_seconds=60), metadata=metadata)
        assert claim.claimed
        if claim.run.run_id == created.run.run_id:
            return claim, metadata
        await stub.FinishRun(
            tpb.FinishRunRequest(run_id=claim.run.run_id, lease_epoch=claim.lease_epoch, cancelled=True),
            metadata=metadata,
        )


async def test_odd_keys_and_repeated_files_register_exactly(
    stack: InProcessStack, tracker: tpb_grpc.TrackerServiceStub
) -> None:
    stub = tracker
    claim, metadata = await claimed_run(stack, stub)
    entries = [FileEntry(key, f"etag-{n}", n + 1, MOMENT) for n, key in enumerate(ODD_KEYS)]

    async def chunks() -> AsyncIterator[tpb.RegisterFilesRequest]:
        for part in (entries[:4], entries[4:], entries[2:5]):  # the last chunk repeats three files
            yield tpb.RegisterFilesRequest(
                run_id=claim.run.run_id, lease_epoch=claim.lease_epoch, packed_files=pack(part)
            )

    registered = await stub.RegisterFiles(chunks(), metadata=metadata)
    assert registered.files_registered == len(ODD_KEYS) + 3  # every line received is stored

    plan = await stub.PlanBatch(
        tpb.PlanBatchRequest(run_id=claim.run.run_id, lease_epoch=claim.lease_epoch, max_retries=3), metadata=metadata
    )
    assert sorted((f.key, f.etag, f.size) for f in plan.batch.files) == sorted((e.key, e.etag, e.size) for e in entries)
    assert {f.last_modified.ToDatetime(tzinfo=UTC) for f in plan.batch.files} == {MOMENT}
    await stub.FinishRun(
        tpb.FinishRunRequest(run_id=claim.run.run_id, lease_epoch=claim.lease_epoch, cancelled=True), metadata=metadata
    )


@pytest.mark.parametrize(
    "line",
    [b"only-a-key\n", b"k\te\tnot-a-size\t2026-01-01T00:00:00+00:00\n", b"k\te\t1\tnot-a-time\n"],
)
async def test_malformed_packed_lines_are_refused(
    stack: InProcessStack, tracker: tpb_grpc.TrackerServiceStub, line: bytes
) -> None:
    stub = tracker
    claim, metadata = await claimed_run(stack, stub)

    async def chunks() -> AsyncIterator[tpb.RegisterFilesRequest]:
        yield tpb.RegisterFilesRequest(run_id=claim.run.run_id, lease_epoch=claim.lease_epoch, packed_files=line)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.RegisterFiles(chunks(), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details().startswith("packed_files: ")
    await stub.FinishRun(
        tpb.FinishRunRequest(run_id=claim.run.run_id, lease_epoch=claim.lease_epoch, cancelled=True), metadata=metadata
    )
