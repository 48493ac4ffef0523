from __future__ import annotations

from google.api import annotations_pb2

from autoloader.control.v1 import control_pb2
from autoloader.executor.v1 import executor_pb2
from autoloader.tracker.v1 import tracker_pb2
from gateway.openapi import build_openapi
from gateway.routes import build_routes

ALL_FILES = [control_pb2.DESCRIPTOR, tracker_pb2.DESCRIPTOR, executor_pb2.DESCRIPTOR]


def annotated_rpcs() -> set[tuple[str, str, str]]:
    """(HTTP verb, path, RPC) for every google.api.http annotation in every proto."""
    found = set()
    for file in ALL_FILES:
        for service in file.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if options.HasExtension(annotations_pb2.http):
                    rule = options.Extensions[annotations_pb2.http]
                    verb = rule.WhichOneof("pattern")
                    found.add((verb.upper(), getattr(rule, verb), method.full_name))
    return found


def test_route_table_is_exactly_the_proto_annotations() -> None:
    routes = {(r.http_method, r.path, r.method.full_name) for r in build_routes()}
    assert routes == annotated_rpcs()
    assert ("POST", "/api/v1/ingestions", "autoloader.control.v1.ControlService.CreateIngestion") in routes


def test_openapi_paths_match_the_route_table() -> None:
    document = build_openapi(build_routes())
    documented = {(verb.upper(), path) for path, operations in document["paths"].items() for verb in operations}
    served = {(r.http_method, r.path) for r in build_routes()} | {("GET", "/healthz"), ("GET", "/metrics")}
    assert documented == served


def test_openapi_describes_the_ingestion_body() -> None:
    document = build_openapi(build_routes())
    ingestion = document["components"]["schemas"]["autoloader.control.v1.Ingestion"]
    assert ingestion["additionalProperties"] is False
    assert ingestion["properties"]["source"] == {"$ref": "#/components/schemas/autoloader.control.v1.Source"}
    assert ingestion["properties"]["create_time"]["format"] == "date-time"
