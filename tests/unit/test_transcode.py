from __future__ import annotations

import pytest

from autoloader.control.v1 import control_pb2 as pb
from gateway.routes import build_routes
from gateway.transcode import field_mask_paths, request_from_http, response_to_json, unknown_fields
from services.shared.errors import InvalidArgument

ROUTES = {r.method.name: r for r in build_routes()}


def test_patch_mask_names_nested_leaves_but_keeps_maps_whole() -> None:
    body = {"name": "n", "source": {"pattern": "*.csv", "options": {"header": "true"}}, "schedule": None}
    assert field_mask_paths(body, pb.Ingestion.DESCRIPTOR) == [
        "name",
        "source.pattern",
        "source.options",
        "schedule",
    ]


def test_unknown_fields_are_named_with_their_path() -> None:
    found = unknown_fields({"source": {"bogus": 1}, "extra": 2}, pb.Ingestion.DESCRIPTOR)
    assert [v.field for v in found] == ["source.bogus", "extra"]


def test_patch_request_binds_path_body_and_mask() -> None:
    message = request_from_http(
        ROUTES["UpdateIngestion"], {"ingestion_id": "abc"}, [], b'{"source": {"uri": "s3://b/x/"}}'
    )
    assert isinstance(message, pb.UpdateIngestionRequest)
    assert message.ingestion_id == "abc"
    assert message.ingestion.source.uri == "s3://b/x/"
    assert list(message.update_mask.paths) == ["source.uri"]


def test_query_parameters_are_typed_and_checked() -> None:
    message = request_from_http(ROUTES["ListIngestions"], {}, [("page_size", "5")], b"")
    assert isinstance(message, pb.ListIngestionsRequest)
    assert message.page_size == 5
    with pytest.raises(InvalidArgument, match="page_size"):
        request_from_http(ROUTES["ListIngestions"], {}, [("page_size", "five")], b"")
    with pytest.raises(InvalidArgument, match="colour"):
        request_from_http(ROUTES["ListIngestions"], {}, [("colour", "red")], b"")


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"ingestion_id": 5}'])
def test_bad_bodies_are_invalid_arguments(body: bytes) -> None:
    with pytest.raises(InvalidArgument):
        request_from_http(ROUTES["CreateIngestion"], {}, [], body)


def test_response_body_selects_the_resource_and_int64_stays_a_number() -> None:
    response = pb.GetIngestionResponse(ingestion=pb.Ingestion(ingestion_id="a", max_bytes_per_run=2**40))
    rendered = response_to_json(ROUTES["GetIngestion"], response)
    assert rendered["ingestion_id"] == "a"
    assert rendered["max_bytes_per_run"] == 2**40


@pytest.mark.parametrize(
    ("path_params", "query", "body", "field"),
    [
        ({"ingestion_id": "a\x00b"}, [], b'{"ingestion": {}}', "ingestion_id"),
        ({"ingestion_id": "a"}, [("request_id", "x\x00")], b'{"ingestion": {}}', "request_id"),
        ({"ingestion_id": "a"}, [], b'{"source": {"options": {"sep": "\\u0000"}}}', "source.options.sep"),
    ],
)
def test_a_nul_character_anywhere_is_refused_naming_the_field(
    path_params: dict[str, str], query: list[tuple[str, str]], body: bytes, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        request_from_http(ROUTES["UpdateIngestion"], path_params, query, body)
    assert [v.field for v in refused.value.violations] == [field]


@pytest.mark.parametrize("depth", [33, 500, 990, 5000])
def test_a_body_nested_deeper_than_the_limit_is_refused_at_any_depth(depth: int) -> None:
    nested = '{"a": ' * depth + "1" + "}" * depth
    body = ('{"name": "x", "source": {"options": ' + nested + "}}").encode()
    with pytest.raises(InvalidArgument, match="nested too deeply"):
        request_from_http(ROUTES["CreateIngestion"], {}, [], body)


def test_a_body_within_the_depth_limit_gets_its_ordinary_checks() -> None:
    body = b'{"name": "x", "source": {"options": {"header": "true"}}}'
    message = request_from_http(ROUTES["CreateIngestion"], {}, [], body)
    assert isinstance(message, pb.CreateIngestionRequest)
    assert message.ingestion.source.options["header"] == "true"
