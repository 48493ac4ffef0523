from __future__ import annotations

from google.protobuf import struct_pb2

from autoloader.control.v1 import control_pb2 as pb
from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.shared.nul_guard import REASON, nul_violations


def fields(message: object) -> list[str]:
    violations = nul_violations(message)  # type: ignore[arg-type]
    assert all(v.description == REASON for v in violations)
    return [v.field for v in violations]


def test_a_clean_request_has_no_violations() -> None:
    request = pb.CreateIngestionRequest(
        ingestion=pb.Ingestion(name="n", source=pb.Source(uri="s3://b/p/", options={"header": "true"}))
    )
    assert fields(request) == []


def test_nul_is_found_in_top_level_nested_map_and_repeated_fields_and_named() -> None:
    request = pb.CreateIngestionRequest(
        request_id="r\x00",
        ingestion=pb.Ingestion(
            name="ok",
            source=pb.Source(uri="s3://b/\x00", options={"sep\x00": "x", "quote": "\x00"}),
            destination=pb.Destination(table="t", merge_keys=["id", "k\x00"]),
        ),
    )
    assert sorted(fields(request)) == sorted(
        [
            "request_id",
            "ingestion.source.uri",
            "ingestion.source.options.sep\x00",
            "ingestion.source.options.quote",
            "ingestion.destination.merge_keys[1]",
        ]
    )


def test_nul_inside_a_struct_value_is_found() -> None:
    config = struct_pb2.Struct()
    config.update({"source": {"uri": "file:///x\x00"}})
    request = tpb.CreateRunRequest(ingestion_id="i", ingestion=config)
    assert fields(request) == ["ingestion.fields.source.struct_value.fields.uri.string_value"]
