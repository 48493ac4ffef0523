"""Runs, files and batches as the tracker's use cases see them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ACTIVE_STATUSES = ("QUEUED", "RUNNING")
RUN_STATUSES = ("QUEUED", "RUNNING", "SUCCESS", "FAILED", "PARTIAL_SUCCESS", "CANCELLED")
FILE_STATUSES = ("CLAIMED", "PROCESSED", "FAILED", "SKIPPED")


@dataclass(frozen=True)
class FileEntry:
    key: str
    etag: str
    size: int
    last_modified: datetime
    attempts: int = 0


@dataclass(frozen=True)
class Batch:
    batch_seq: int
    batch_key: str
    files: list[FileEntry]
    files_hash: str


@dataclass(frozen=True)
class Run:
    run_id: str
    ingestion_id: str
    status: str
    trigger: str
    requested_by: str
    table: str
    files_discovered: int
    files_processed: int
    files_failed: int
    files_skipped: int
    rows_written: int
    bytes_processed: int
    snapshot_id: int | None
    batch_seq: int | None
    error: str
    create_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    executor_id: str = ""
    # Who asked to cancel the run; empty when nobody did.
    cancel_requested_by: str = ""

    @property
    def batch_key(self) -> str:
        return batch_key(self.ingestion_id, self.batch_seq) if self.batch_seq is not None else ""


@dataclass(frozen=True)
class Claim:
    run: Run
    lease_epoch: int
    ingestion: dict[str, Any]
    batch: Batch | None
    # Set when the run lists only the keys after this one (incremental listing); None: the whole source.
    listing_start_after: str | None = None


@dataclass(frozen=True)
class ProcessedFile:
    key: str
    etag: str
    size: int
    last_modified: datetime
    status: str
    run_id: str
    snapshot_id: int | None
    attempts: int
    error: str
    update_time: datetime
    discover_time: datetime | None = None
    claim_time: datetime | None = None
    process_time: datetime | None = None
    commit_time: datetime | None = None


@dataclass(frozen=True)
class FileFailure:
    key: str
    etag: str
    error: str


def batch_key(ingestion_id: str, batch_seq: int) -> str:
    """The stable key of a batch, carried inside the Iceberg commit (never a process or Spark id)."""
    return f"{ingestion_id}:{batch_seq}"


def files_hash(files: list[FileEntry]) -> str:
    digest = hashlib.sha256()
    for key, etag in sorted((f.key, f.etag) for f in files):
        digest.update(key.encode() + b"\0" + etag.encode() + b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class FileSelection:
    """Which processed-file records a clear applies to; every set criterion must match (none: all)."""

    key_prefix: str = ""
    keys: tuple[str, ...] = ()
    status: str = ""
    modified_after: datetime | None = None
    modified_before: datetime | None = None
    run_id: str = ""

    def where(self, first_parameter: int) -> tuple[str, list[Any]]:
        """SQL conditions (joined with AND, each starting with ' AND') and their parameters."""
        conditions: list[str] = []
        values: list[Any] = []
        if self.key_prefix:
            # starts_with rather than LIKE: keys may hold % and _.
            conditions.append("starts_with(key, ${})")
            values.append(self.key_prefix)
        if self.keys:
            conditions.append("key = ANY(${}::text[])")
            values.append(list(self.keys))
        if self.status:
            conditions.append("status = ${}")
            values.append(self.status)
        if self.modified_after is not None:
            conditions.append("last_modified >= ${}")
            values.append(self.modified_after)
        if self.modified_before is not None:
            conditions.append("last_modified < ${}")
            values.append(self.modified_before)
        if self.run_id:
            conditions.append("run_id = ${}")
            values.append(self.run_id)
        numbered = [c.format(first_parameter + i) for i, c in enumerate(conditions)]
        return "".join(f" AND {c}" for c in numbered), values


@dataclass(frozen=True)
class Cleared:
    files: int
    bytes: int


@dataclass(frozen=True)
class PreviewResult:
    """What the next run of an ingestion would do, as planned from a fresh listing."""

    files_to_process: int
    bytes_to_process: int
    files: list[FileEntry]
    files_pending: int
    bytes_pending: int
    files_discovered: int
    files_skipped: int
    table_exists: bool
    files_loaded_before: int
    active_run_id: str
    files_to_reprocess: int = 0
    bytes_to_reprocess: int = 0


@dataclass(frozen=True)
class Preview:
    preview_id: str
    status: str  # QUEUED | RUNNING | DONE | FAILED
    error: str
    result: PreviewResult | None
