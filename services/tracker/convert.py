"""Tracker domain objects ↔ proto messages."""

from __future__ import annotations

from datetime import datetime

from autoloader.tracker.v1 import tracker_pb2 as pb
from services.shared.timestamps import from_timestamp, to_timestamp
from services.tracker.delivery_repository import Delivery
from services.tracker.models import Batch, FileEntry, PreviewResult, ProcessedFile, Run


def run_to_pb(run: Run) -> pb.Run:
    return pb.Run(
        run_id=run.run_id,
        ingestion_id=run.ingestion_id,
        status=run.status,
        trigger=run.trigger,
        requested_by=run.requested_by,
        files_discovered=run.files_discovered,
        files_processed=run.files_processed,
        files_failed=run.files_failed,
        files_skipped=run.files_skipped,
        rows_written=run.rows_written,
        bytes_processed=run.bytes_processed,
        snapshot_id=run.snapshot_id,
        batch_key=run.batch_key,
        create_time=to_timestamp(run.create_time),
        start_time=to_timestamp(run.start_time),
        end_time=to_timestamp(run.end_time),
        error=run.error,
        table=run.table,
        executor_id=run.executor_id,
        cancel_requested=bool(run.cancel_requested_by),
    )


def entry_to_pb(entry: FileEntry) -> pb.FileEntry:
    return pb.FileEntry(
        key=entry.key,
        etag=entry.etag,
        size=entry.size,
        last_modified=to_timestamp(entry.last_modified),
        attempts=entry.attempts,
    )


def entry_from_pb(message: pb.FileEntry) -> FileEntry:
    return FileEntry(
        key=message.key,
        etag=message.etag,
        size=message.size,
        last_modified=from_timestamp(message.last_modified),
        attempts=message.attempts,
    )


def batch_to_pb(batch: Batch) -> pb.Batch:
    return pb.Batch(
        batch_seq=batch.batch_seq,
        batch_key=batch.batch_key,
        files=[entry_to_pb(f) for f in batch.files],
        files_hash=batch.files_hash,
    )


def processed_file_to_pb(record: ProcessedFile) -> pb.ProcessedFile:
    return pb.ProcessedFile(
        key=record.key,
        etag=record.etag,
        size=record.size,
        last_modified=to_timestamp(record.last_modified),
        status=record.status,
        run_id=record.run_id,
        snapshot_id=record.snapshot_id,
        attempts=record.attempts,
        error=record.error,
        update_time=to_timestamp(record.update_time),
        discover_time=to_timestamp(record.discover_time),
        claim_time=to_timestamp(record.claim_time),
        process_time=to_timestamp(record.process_time),
        commit_time=to_timestamp(record.commit_time),
    )


def delivery_to_pb(delivery: Delivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        delivery_id=delivery.delivery_id,
        ingestion_id=delivery.ingestion_id,
        run_id=delivery.run_id,
        url=delivery.url,
        status=delivery.status,
        attempts=[
            pb.DeliveryAttempt(
                attempt_time=to_timestamp(datetime.fromisoformat(a["attempt_time"])),
                status_code=a["status_code"],
                error=a["error"],
                duration_ms=a["duration_ms"],
            )
            for a in delivery.attempts
        ],
        next_attempt_time=to_timestamp(delivery.next_attempt_time),
        create_time=to_timestamp(delivery.create_time),
    )


def preview_result_to_pb(result: PreviewResult) -> pb.PreviewResult:
    return pb.PreviewResult(
        files_to_process=result.files_to_process,
        bytes_to_process=result.bytes_to_process,
        files=[entry_to_pb(f) for f in result.files],
        files_pending=result.files_pending,
        bytes_pending=result.bytes_pending,
        files_discovered=result.files_discovered,
        files_skipped=result.files_skipped,
        table_exists=result.table_exists,
        files_loaded_before=result.files_loaded_before,
        active_run_id=result.active_run_id,
        files_to_reprocess=result.files_to_reprocess,
        bytes_to_reprocess=result.bytes_to_reprocess,
    )
