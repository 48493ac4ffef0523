"""The gateway's HTTP contract: its OpenAPI document, unknown routes and methods, request ids, query params.

The OpenAPI document is checked three ways: against the gateway's route table, against the google.api.http
annotations read straight from the compiled proto descriptors, and against what the Starlette app routes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor
from starlette.routing import Route as StarletteRoute

import autoloader
from gateway.app import create_app
from gateway.routes import build_routes
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

OPENAPI_PATH = "/api/v1/openapi.json"
HEALTHZ = ("GET", "/healthz")
METRICS = ("GET", "/metrics")
HTTP_VERBS = ("get", "put", "post", "delete", "patch")
NOT_FOUND, INVALID_ARGUMENT = 5, 3


# ----------------------------------------------------------------------------------------------- helpers


def compiled_proto_modules() -> Iterator[Any]:
    """Every generated *_pb2 module of the autoloader protos (autoloader/<svc>/v<N>/<name>_pb2.py)."""
    root = Path(autoloader.__file__).parent
    files = sorted(root.glob("*/v*/*_pb2.py"))
    assert files, f"no compiled protos under {root}"
    for file in files:
        yield importlib.import_module(".".join(("autoloader", *file.relative_to(root).with_suffix("").parts)))


def _bindings(rule: http_pb2.HttpRule) -> Iterator[tuple[str, str]]:
    verb = rule.WhichOneof("pattern")
    assert verb in HTTP_VERBS, f"unexpected HTTP rule pattern {verb}"
    yield verb.upper(), getattr(rule, verb)
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


def annotated_operations() -> dict[tuple[str, str], str]:
    """(HTTP method, path template) → RPC name, from the google.api.http options of every proto method."""
    operations: dict[tuple[str, str], str] = {}
    for module in compiled_proto_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            method: MethodDescriptor
            for method in service.methods:
                options = method.GetOptions()
                if not options.HasExtension(annotations_pb2.http):
                    continue
                for binding in _bindings(options.Extensions[annotations_pb2.http]):
                    assert binding not in operations, f"{binding} is bound twice"
                    operations[binding] = method.name
    return operations


def route_table_operations() -> dict[tuple[str, str], str]:
    return {(r.http_method, r.path): r.method.name for r in build_routes()}


def documented_operations(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {
        (verb.upper(), path): operation["operationId"]
        for path, item in document["paths"].items()
        for verb, operation in item.items()
        if verb in HTTP_VERBS
    }


def app_routes() -> set[tuple[str, str]]:
    """What the Starlette app actually routes (without HEAD, Starlette's automatic companion of GET)."""
    app = create_app({"control": "127.0.0.1:1"})
    served = set()
    for route in app.routes:
        assert isinstance(route, StarletteRoute), route
        served |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return served


def fill(template: str, value: str = "no-such-thing") -> str:
    return re.sub(r"\{[^}]+\}", value, template)


def assert_status_json(response: httpx.Response, http_status: int, grpc_code: int) -> dict[str, Any]:
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == grpc_code, body
    assert body["message"]
    assert "Traceback" not in response.text
    return body


# ----------------------------------------------------------------------------------------------- fixtures


@pytest_asyncio.fixture(loop_scope="session")
async def admin(stack: InProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.http(stack.admin_token) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous(stack: InProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.http() as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def openapi(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get(OPENAPI_PATH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    assert document["openapi"].startswith("3.")
    return document


# ----------------------------------------------------------------------------------------------- OpenAPI


async def test_openapi_lists_exactly_the_gateway_route_table(openapi: dict[str, Any]) -> None:
    expected = {**route_table_operations(), HEALTHZ: "Healthz", METRICS: "Metrics"}

    assert documented_operations(openapi) == expected


async def test_openapi_lists_exactly_the_proto_http_annotations(openapi: dict[str, Any]) -> None:
    annotated = annotated_operations()
    assert annotated, "no google.api.http annotation found in any proto"

    documented = documented_operations(openapi)
    documented.pop(HEALTHZ)
    documented.pop(METRICS)

    assert documented == annotated
    assert route_table_operations() == annotated


async def test_openapi_lists_exactly_what_the_app_routes(openapi: dict[str, Any]) -> None:
    # The document does not describe itself, nor the web console's static pages (/ui); everything else the app
    # routes must be in it, and nothing more.
    served = {(method, path) for method, path in app_routes() if not path.startswith("/ui")} - {("GET", OPENAPI_PATH)}

    assert set(documented_operations(openapi)) == served


async def test_every_documented_operation_is_served(openapi: dict[str, Any], anonymous: httpx.AsyncClient) -> None:
    # Without a token a served route answers 401 (or 200 for /healthz); an unserved one would be 404/405.
    for method, path in documented_operations(openapi):
        response = await anonymous.request(method, fill(path))

        expected = 200 if (method, path) in (HEALTHZ, METRICS) else 401
        assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"


def schema_refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref":
                yield item
            else:
                yield from schema_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from schema_refs(item)


async def test_openapi_operations_describe_their_route(openapi: dict[str, Any]) -> None:
    for route in build_routes():
        operation = openapi["paths"][route.path][route.http_method.lower()]
        path_params = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert path_params == set(route.path_variables), route.path
        assert str(route.success_status) in operation["responses"], route.path
        assert ("requestBody" in operation) == bool(route.body), route.path
        assert operation["security"] == [{"bearer": []}], route.path
    for ref in set(schema_refs(openapi)):
        name = ref.removeprefix("#/components/schemas/")
        assert ref.startswith("#/components/schemas/") and name in openapi["components"]["schemas"], ref


async def test_documented_create_status_is_what_is_served(admin: httpx.AsyncClient, openapi: dict[str, Any]) -> None:
    documented = {c for c in openapi["paths"]["/api/v1/ingestions"]["post"]["responses"] if c.startswith("2")}
    body = {
        "name": "contract",
        "source": {"uri": "file:///data/contract/", "format": "csv"},
        "destination": {"table": "raw.contract"},
    }

    response = await admin.post("/api/v1/ingestions", json=body)

    assert documented == {str(response.status_code)}, response.text


# ----------------------------------------------------------------------------------------------- routing errors


@pytest.mark.parametrize(
    "path",
    ["/nope", "/api/v1/nope", "/api/v2/ingestions", "/api/v1/ingestions/some-id/unknown", "/api/v1/tokens/a/b"],
)
async def test_unknown_route_is_a_404_status(admin: httpx.AsyncClient, path: str) -> None:
    response = await admin.get(path)

    body = assert_status_json(response, 404, NOT_FOUND)
    assert path in body["message"]


# (method, path template) pairs the gateway routes under another method only.
WRONG_METHODS = [
    ("PUT", "/api/v1/ingestions"),
    ("DELETE", "/api/v1/ingestions"),
    ("POST", "/api/v1/ingestions/{ingestion_id}"),
    ("PUT", "/api/v1/ingestions/{ingestion_id}"),
    ("PATCH", "/api/v1/tokens"),
    ("GET", "/api/v1/tokens/{token_id}"),
    ("POST", "/healthz"),
    ("DELETE", OPENAPI_PATH),
]


@pytest.mark.parametrize(("method", "template"), WRONG_METHODS)
async def test_wrong_method_is_a_405_status(admin: httpx.AsyncClient, method: str, template: str) -> None:
    assert (method, template) not in app_routes()

    response = await admin.request(method, fill(template))

    body = assert_status_json(response, 405, INVALID_ARGUMENT)
    assert method in body["message"]


@pytest.mark.parametrize(("method", "template"), WRONG_METHODS)
async def test_wrong_method_names_the_allowed_methods(admin: httpx.AsyncClient, method: str, template: str) -> None:
    allowed = {m for m, p in app_routes() if p == template}
    assert allowed, template

    response = await admin.request(method, fill(template))

    assert response.status_code == 405
    listed = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
    assert allowed <= listed, f"Allow: {response.headers.get('allow')!r}, expected {sorted(allowed)}"


# ----------------------------------------------------------------------------------------------- request ids


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/ingestions", 200),
        ("/api/v1/ingestions/no-such-ingestion", 404),
        ("/api/v1/ingestions?page_size=x", 400),
        ("/nope", 404),
        ("/healthz", 200),
    ],
)
async def test_client_request_id_is_echoed(admin: httpx.AsyncClient, path: str, status: int) -> None:
    request_id = "contract-test.Request_42"

    response = await admin.get(path, headers={"x-request-id": request_id})

    assert response.status_code == status, response.text
    assert response.headers.get_list("x-request-id") == [request_id]


async def test_request_id_is_echoed_on_401(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/api/v1/ingestions", headers={"x-request-id": "unauthenticated-call"})

    assert response.status_code == 401
    assert response.headers["x-request-id"] == "unauthenticated-call"


@pytest.mark.parametrize(
    "sent",
    [None, "has spaces", "x" * 129, "semi;colon", "ünicode"],
    ids=["absent", "spaces", "too-long", "semicolon", "non-ascii"],
)
async def test_unusable_request_id_is_replaced_by_a_generated_one(admin: httpx.AsyncClient, sent: str | None) -> None:
    headers = {"x-request-id": sent.encode()} if sent is not None else {}

    first = await admin.get("/api/v1/ingestions", headers=headers)
    second = await admin.get("/api/v1/ingestions", headers=headers)

    generated = [first.headers.get_list("x-request-id"), second.headers.get_list("x-request-id")]
    assert all(len(ids) == 1 for ids in generated), generated
    assert all(re.fullmatch(r"[0-9a-f]{32}", ids[0]) for ids in generated), generated
    assert generated[0] != generated[1], "each request gets its own id"


# ----------------------------------------------------------------------------------------------- query params


@pytest.mark.parametrize(
    ("method", "path", "param", "body"),
    [
        ("GET", "/api/v1/ingestions", "bogus", None),
        ("GET", "/api/v1/ingestions", "pageSize", None),
        ("POST", "/api/v1/ingestions", "bogus", {}),
        ("POST", "/api/v1/ingestions", "ingestion", {}),
        ("GET", "/api/v1/ingestions/no-such-ingestion", "ingestion_id", None),
        ("GET", "/api/v1/ingestions/no-such-ingestion", "verbose", None),
        ("PATCH", "/api/v1/ingestions/no-such-ingestion", "update_mask", {"name": "x"}),
        ("DELETE", "/api/v1/ingestions/no-such-ingestion", "force", None),
        ("POST", "/api/v1/tokens", "name", {"name": "x", "role": "ROLE_VIEWER"}),
        ("GET", "/api/v1/tokens", "bogus", None),
        ("DELETE", "/api/v1/tokens/tok-00000000", "token_id", None),
    ],
)
async def test_unknown_query_parameter_is_a_400_naming_it(
    admin: httpx.AsyncClient, method: str, path: str, param: str, body: dict[str, Any] | None
) -> None:
    response = await admin.request(method, path, params={param: "1"}, json=body)

    status = assert_status_json(response, 400, INVALID_ARGUMENT)
    fields = {v["field"] for d in status["details"] for v in d["field_violations"]}
    assert param in fields, status
    assert param in status["message"]


async def test_known_query_parameters_are_accepted(admin: httpx.AsyncClient) -> None:
    listed = await admin.get("/api/v1/ingestions", params={"page_size": "3"})
    tokens = await admin.get("/api/v1/tokens", params={"show_revoked": "true"})

    assert listed.status_code == 200, listed.text
    assert len(listed.json()["ingestions"]) <= 3
    assert tokens.status_code == 200, tokens.text
