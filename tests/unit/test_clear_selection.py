"""The selection of processed-file records to clear: SQL conditions, and the public/internal request match."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message

from autoloader.control.v1 import control_pb2
from autoloader.tracker.v1 import tracker_pb2
from services.tracker.models import FileSelection


def test_no_selection_adds_no_condition() -> None:
    assert FileSelection().where(2) == ("", [])


def test_each_criterion_is_a_numbered_condition() -> None:
    after, before = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    selection = FileSelection(
        key_prefix="a/%_", keys=("x", "y"), status="FAILED", modified_after=after, modified_before=before
    )
    conditions, values = selection.where(2)
    assert conditions == (
        " AND starts_with(key, $2) AND key = ANY($3::text[]) AND status = $4"
        " AND last_modified >= $5 AND last_modified < $6"
    )
    assert values == ["a/%_", ["x", "y"], "FAILED", after, before]


def test_the_public_clear_request_copies_onto_the_tracker_request_field_by_field() -> None:
    """The control service passes a ClearProcessedFilesRequest on as bytes of a ClearFilesRequest."""

    def fields(message: type[Message]) -> dict[int, tuple[str, int, bool]]:
        return {f.number: (f.name, f.type, f.is_repeated) for f in message.DESCRIPTOR.fields}

    assert fields(control_pb2.ClearProcessedFilesRequest) == fields(tracker_pb2.ClearFilesRequest)
    request = control_pb2.ClearProcessedFilesRequest(ingestion_id="i", key_prefix="p/", keys=["k"], dry_run=True)
    request.modified_after_time.FromJsonString("2026-01-01T00:00:00Z")
    copied = tracker_pb2.ClearFilesRequest.FromString(request.SerializeToString())
    assert (copied.key_prefix, list(copied.keys), copied.dry_run) == ("p/", ["k"], True)
    assert copied.modified_after_time.ToJsonString() == "2026-01-01T00:00:00Z"
