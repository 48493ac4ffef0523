from __future__ import annotations

from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.control.models import Destination, Ingestion
from services.control.preview_warnings import preview_warnings

APPEND = Ingestion(destination=Destination(table="db.t"))
MERGE = Ingestion(destination=Destination(table="db.t", write_mode="merge", merge_keys=("id",)))


def test_a_quiet_preview_has_no_warnings() -> None:
    result = tpb.PreviewResult(files_to_process=3, files_pending=3, table_exists=True)
    assert preview_warnings(APPEND, result) == []


def test_files_loaded_before_into_a_kept_table_warn_of_duplicates_only_when_appending() -> None:
    result = tpb.PreviewResult(files_to_process=2, files_pending=2, table_exists=True, files_loaded_before=2)
    [warning] = preview_warnings(APPEND, result)
    assert warning.startswith("2 of the files to process were loaded into db.t") and "duplicates" in warning
    assert preview_warnings(MERGE, result) == []  # a merge replaces rows by key
    dropped = tpb.PreviewResult(files_to_process=2, files_pending=2, table_exists=False, files_loaded_before=2)
    assert preview_warnings(APPEND, dropped) == []


def test_skipped_files_an_active_run_and_run_limits_are_mentioned() -> None:
    result = tpb.PreviewResult(files_to_process=1, files_pending=4, files_skipped=2, active_run_id="run-1")
    warnings = preview_warnings(APPEND, result)
    assert [w.split()[0] for w in warnings] == ["2", "run", "4"]
    assert "status=SKIPPED" in warnings[0] and "run-1" in warnings[1] and "take 1" in warnings[2]
