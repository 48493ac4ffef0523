"""Case e: the tracker with a million files. A run's listing of N keys, of which `new` are new, is streamed to
a tracker that already holds N - new processed-file records; timed: registering the listing, then planning
the batch (the diff against the records, and claiming the new files). Peak memory of the tracker process and
of the database server: flat means it does not grow with N. The listing is packed before the clock starts, as
an executor packs it while it lists.

    python -m bench.tracker_scale --files 1000000 --new 1000
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import grpc
from google.protobuf import struct_pb2

from autoloader.stack.bootstrap import prepare_database
from autoloader.tracker.v1 import tracker_pb2 as tpb
from autoloader.tracker.v1 import tracker_pb2_grpc as tpb_grpc
from bench.processes import PeakMemory, database_pid, postgres, service
from services.tracker.listing_format import pack
from services.tracker.models import FileEntry

INGESTION = "bench-scale"
CHUNK = 5000  # files per RegisterFiles message, as the executor sends them
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ScaleResult:
    files: int
    new: int
    register_seconds: float
    plan_seconds: float
    batch_files: int
    tracker_peak_mib: float
    tracker_growth_mib: float
    database_growth_mib: float

    @property
    def total_seconds(self) -> float:
        return self.register_seconds + self.plan_seconds


def key(n: int) -> str:
    return f"events/2026/{n // 10_000:04d}/part-{n:08d}.json"


def listed(files: int) -> Iterator[tuple[str, str, int, datetime]]:
    for n in range(files):
        yield key(n), f"{n:032x}", 1_000 + n % 9_000, T0 + timedelta(seconds=n)


async def seed(url: str, tracked: int) -> None:
    """tracked processed-file records, as earlier runs would have left them (not timed)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.copy_records_to_table(
            "files",
            schema_name="tracker",
            columns=["ingestion_id", "key", "etag", "size", "last_modified", "status", "run_id", "batch_seq"],
            records=((INGESTION, k, e, s, m, "PROCESSED", "run-seed", 1) for k, e, s, m in listed(tracked)),
        )
        await conn.execute("ANALYZE tracker.files")
    finally:
        await conn.close()


def message_listing(files: int) -> list[list[tpb.FileEntry]]:
    """The listing as one message per file (the wire form before packed listings), for comparison."""
    chunks: list[list[tpb.FileEntry]] = [[]]
    for k, etag, size, modified in listed(files):
        entry = tpb.FileEntry(key=k, etag=etag, size=size)
        entry.last_modified.FromDatetime(modified)
        if len(chunks[-1]) == CHUNK:
            chunks.append([])
        chunks[-1].append(entry)
    return chunks


def packed_listing(files: int) -> list[bytes]:
    """The listing as the executor sends it: chunks of packed lines (made before the clock starts, as an
    executor makes them while it lists)."""
    entries = (FileEntry(k, etag, size, modified) for k, etag, size, modified in listed(files))
    return [pack(itertools.islice(entries, CHUNK)) for _ in range(0, files, CHUNK)]


async def measure(files: int, new: int, workdir: Path, wire: str = "packed") -> ScaleResult:
    field = "packed_files" if wire == "packed" else "files"
    (workdir / "home").mkdir(exist_ok=True)
    with postgres(workdir) as url:
        credentials = await prepare_database(url, workdir / "home")
        await seed(url, files - new)
        with service("tracker", {"AUTOLOADER_DATABASE_URL": url}, workdir) as tracker:
            metadata = (("authorization", f"Bearer {credentials.admin_token}"),)
            async with grpc.aio.insecure_channel(tracker.address) as channel:
                stub = tpb_grpc.TrackerServiceStub(channel)
                config = struct_pb2.Struct()
                config.update({"ingestion_id": INGESTION, "destination": {"table": "bench.scale"}})
                await stub.CreateRun(
                    tpb.CreateRunRequest(ingestion_id=INGESTION, ingestion=config, trigger="manual"), metadata=metadata
                )
                claim = await stub.ClaimRun(
                    tpb.ClaimRunRequest(executor_id="bench", lease_seconds=3600), metadata=metadata
                )
                run_id, epoch = claim.run.run_id, claim.lease_epoch
                chunks = packed_listing(files) if wire == "packed" else message_listing(files)
                memory = PeakMemory({"tracker": tracker.process.pid, "database": database_pid(url)})
                with memory.watching():
                    started = time.perf_counter()

                    async def requests() -> AsyncIterator[tpb.RegisterFilesRequest]:
                        for chunk in chunks:
                            yield tpb.RegisterFilesRequest(run_id=run_id, lease_epoch=epoch, **{field: chunk})

                    await stub.RegisterFiles(requests(), metadata=metadata, timeout=600)
                    registered = time.perf_counter()
                    plan = await stub.PlanBatch(
                        tpb.PlanBatchRequest(run_id=run_id, lease_epoch=epoch, max_retries=3),
                        metadata=metadata,
                        timeout=600,
                    )
                    planned = time.perf_counter()
    return ScaleResult(
        files=files,
        new=new,
        register_seconds=registered - started,
        plan_seconds=planned - registered,
        batch_files=len(plan.batch.files),
        tracker_peak_mib=memory.peak_mib("tracker"),
        tracker_growth_mib=memory.growth_mib("tracker"),
        database_growth_mib=memory.growth_mib("database"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.tracker_scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--wire", choices=["packed", "messages"], default="packed", help="how the listing is sent")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as directory:
        result = asyncio.run(measure(arguments.files, arguments.new, Path(directory), arguments.wire))
    print(result, f"total={result.total_seconds:.2f}s")


if __name__ == "__main__":
    main()
