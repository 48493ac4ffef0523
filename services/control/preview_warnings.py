"""What a preview warns about before a run: rows that would be loaded twice, files it cannot load, and a
run still in progress."""

from __future__ import annotations

from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.control.models import Ingestion


def preview_warnings(ingestion: Ingestion, result: tpb.PreviewResult) -> list[str]:
    warnings = []
    table = ingestion.destination.table
    if result.files_loaded_before and result.table_exists and ingestion.destination.write_mode == "append":
        warnings.append(
            f"{result.files_loaded_before} of the files to process were loaded into {table} before their processed"
            f" file records were cleared, and the table was kept: appending them again duplicates their rows."
            f" Drop the table first for a full reprocess, or use write_mode 'merge'."
        )
    if result.files_skipped:
        warnings.append(
            f"{result.files_skipped} file(s) are skipped: they failed max_retries + 1 times ({ingestion.max_retries}"
            f" retries). Clear their records (status=SKIPPED) to try them again."
        )
    if result.active_run_id:
        warnings.append(
            f"run {result.active_run_id} is still active: the next run starts after it and may find fewer files"
        )
    if result.files_pending > result.files_to_process:
        warnings.append(
            f"{result.files_pending} files wait in all; the run limits (max_files_per_run, max_bytes_per_run) let"
            f" the next run take {result.files_to_process} of them"
        )
    return warnings
