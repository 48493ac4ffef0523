"""Who may call what: every gateway route and every ControlService RPC against every kind of caller.

The route list comes from the gateway itself (gateway.routes.build_routes() plus its non-proto routes), and
the RPC list from the ControlService descriptor, so a new route or RPC without an expected outcome in the
tables below fails here instead of going untested.
"""

from __future__ import annotations

import importlib
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.routing import Route as StarletteRoute

import autoloader
from autoloader.control.v1 import control_pb2 as pb
from autoloader.control.v1 import control_pb2_grpc as pb_grpc
from gateway.app import create_app
from gateway.routes import build_routes
from services.shared.auth import Role
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration

# ----------------------------------------------------------------------------------------------- callers

# Callers that must be refused before anything else happens, with the Authorization header each sends.
# "revoked-token" is filled in at run time: a token created over HTTP, used once, then revoked over HTTP.
UNAUTHENTICATED_CALLERS: dict[str, str | None] = {
    "no-token": None,
    "basic-scheme": "Basic x",
    "bearer-without-token": "Bearer",
    "bearer-malformed": "Bearer not-a-token",
    "unknown-token": "Bearer alk_" + "A" * 43,
    "revoked-token": "<revoked>",
}
# Authenticated callers: each role acting on an ingestion it owns, one shared with it, and another's it was
# never given. "own" tokens carry the owner's name; "shared" ones the name the owner shared the ingestion with
# (at the editor role, so each acts with its token's role); "other" ones a name that was given nothing.
ROLES = ("viewer", "runner", "editor")
RELATIONS = ("own", "shared", "other")
ADMIN = "admin"
AUTHENTICATED_CALLERS = (*(f"{role}-{relation}" for role in ROLES for relation in RELATIONS), ADMIN)
ALL_CALLERS = (*UNAUTHENTICATED_CALLERS, *AUTHENTICATED_CALLERS)

# ----------------------------------------------------------------------------------------------- HTTP table

HEALTHZ = "GET /healthz"
OPENAPI = "GET /api/v1/openapi.json"
METRICS = "GET /metrics"
CONSOLE = ("GET /ui", "GET /ui/", "GET /ui/{path:path}")
# Routes the app serves besides the proto-annotated ones.
EXTRA_ROUTES = (HEALTHZ, OPENAPI, METRICS, *CONSOLE)

# Status of each route for: any unauthenticated caller | viewer own, shared, other | runner own, shared, other |
# editor own, shared, other | admin. An ingestion a caller cannot see is 404, exactly like a missing one.
READ = (401, 200, 200, 404, 200, 200, 404, 200, 200, 404, 200)
ANYONE = (401, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200)
ADMIN_ONLY = (401, 403, 403, 403, 403, 403, 403, 403, 403, 403, 200)
HTTP_EXPECTED: dict[str, tuple[int, ...]] = {
    HEALTHZ:                                                    (200,) * 11,
    OPENAPI:                                                    ANYONE,
    METRICS:                                                    (200,) * 11,
    # The console's static files: the pages sign in with a token and call the API, which checks it.
    "GET /ui":                                                  (308,) * 11,
    "GET /ui/":                                                 (200,) * 11,
    "GET /ui/{path:path}":                                      (200,) * 11,
    "POST /api/v1/ingestions":                                  (401, 403, 403, 403, 403, 403, 403, 201, 201, 201, 201),
    "GET /api/v1/ingestions":                                   ANYONE,
    "GET /api/v1/ingestions/{ingestion_id}":                    READ,
    "PATCH /api/v1/ingestions/{ingestion_id}":                  (401, 403, 403, 404, 403, 403, 404, 200, 200, 404, 200),
    "DELETE /api/v1/ingestions/{ingestion_id}":                 (401, 403, 403, 404, 403, 403, 404, 200, 403, 404, 200),
    "POST /api/v1/ingestions/{ingestion_id}/run":               (401, 403, 403, 404, 202, 202, 404, 202, 202, 404, 202),
    "GET /api/v1/ingestions/{ingestion_id}/runs":               READ,
    "GET /api/v1/ingestions/{ingestion_id}/processed-files":    READ,
    "DELETE /api/v1/ingestions/{ingestion_id}/processed-files": (401, 403, 403, 404, 403, 403, 404, 200, 200, 404, 200),
    "GET /api/v1/ingestions/{ingestion_id}/schema":             READ,
    # No executor runs next to this stack: a preview gets past the checks, then finds no one to list (504).
    "GET /api/v1/ingestions/{ingestion_id}/preview":            (401, 403, 403, 404, 504, 504, 404, 504, 504, 404, 504),
    "GET /api/v1/ingestions/{ingestion_id}/schedule-ticks":     READ,
    "GET /api/v1/ingestions/{ingestion_id}/webhook-deliveries": READ,
    "GET /api/v1/ingestions/{ingestion_id}/shares":             READ,
    "POST /api/v1/ingestions/{ingestion_id}/shares":            (401, 403, 403, 404, 403, 403, 404, 200, 403, 404, 200),
    "DELETE /api/v1/ingestions/{ingestion_id}/shares/{principal}":
                                                                (401, 403, 403, 404, 403, 403, 404, 200, 403, 404, 200),
    "GET /api/v1/runs/{run_id}":                                READ,
    "POST /api/v1/runs/{run_id}/cancel":                        (401, 403, 403, 404, 200, 200, 404, 200, 200, 404, 200),
    "GET /api/v1/whoami":                                       ANYONE,
    "POST /api/v1/tokens":                                      ADMIN_ONLY,
    "GET /api/v1/tokens":                                       ADMIN_ONLY,
    "DELETE /api/v1/tokens/{token_id}":                         ADMIN_ONLY,
    "GET /api/v1/audit-events":                                 ADMIN_ONLY,
}  # fmt: skip

# Status when the path names a resource that does not exist, for every authenticated caller in order.
NOT_FOUND_FOR_ALL = (404,) * 10
HTTP_EXPECTED_MISSING_TARGET: dict[str, tuple[int, ...]] = {
    "GET /api/v1/ingestions/{ingestion_id}":                    NOT_FOUND_FOR_ALL,
    "PATCH /api/v1/ingestions/{ingestion_id}":                  NOT_FOUND_FOR_ALL,
    "DELETE /api/v1/ingestions/{ingestion_id}":                 NOT_FOUND_FOR_ALL,
    "POST /api/v1/ingestions/{ingestion_id}/run":               NOT_FOUND_FOR_ALL,
    "GET /api/v1/ingestions/{ingestion_id}/runs":               NOT_FOUND_FOR_ALL,
    "GET /api/v1/ingestions/{ingestion_id}/processed-files":    NOT_FOUND_FOR_ALL,
    "DELETE /api/v1/ingestions/{ingestion_id}/processed-files": NOT_FOUND_FOR_ALL,
    "GET /api/v1/ingestions/{ingestion_id}/schema":             NOT_FOUND_FOR_ALL,
    "GET /api/v1/ingestions/{ingestion_id}/preview":            NOT_FOUND_FOR_ALL,
    "GET /api/v1/ingestions/{ingestion_id}/schedule-ticks":     NOT_FOUND_FOR_ALL,
    "GET /api/v1/ingestions/{ingestion_id}/webhook-deliveries": NOT_FOUND_FOR_ALL,
    "GET /api/v1/ingestions/{ingestion_id}/shares":             NOT_FOUND_FOR_ALL,
    "POST /api/v1/ingestions/{ingestion_id}/shares":            NOT_FOUND_FOR_ALL,
    "DELETE /api/v1/ingestions/{ingestion_id}/shares/{principal}": NOT_FOUND_FOR_ALL,
    "GET /api/v1/runs/{run_id}":                                NOT_FOUND_FOR_ALL,
    "POST /api/v1/runs/{run_id}/cancel":                        NOT_FOUND_FOR_ALL,
    "DELETE /api/v1/tokens/{token_id}":                         (403,) * 9 + (404,),
    "GET /ui/{path:path}":                                      NOT_FOUND_FOR_ALL,
}  # fmt: skip

# Accepted mutations whose effect snapshot() can see on a fresh resource (clearing the processed files of a
# fresh ingestion clears nothing, so it is only checked for refusals changing nothing).
VISIBLE_MUTATIONS = {
    "POST /api/v1/ingestions",
    "PATCH /api/v1/ingestions/{ingestion_id}",
    "DELETE /api/v1/ingestions/{ingestion_id}",
    "POST /api/v1/ingestions/{ingestion_id}/run",
    "POST /api/v1/ingestions/{ingestion_id}/shares",
    "DELETE /api/v1/ingestions/{ingestion_id}/shares/{principal}",
    "POST /api/v1/runs/{run_id}/cancel",
    "POST /api/v1/tokens",
    "DELETE /api/v1/tokens/{token_id}",
}

GRPC_CODE_BY_HTTP_STATUS = {401: 16, 403: 7, 404: 5, 504: 4}


def annotated_route_keys() -> set[str]:
    """Routes annotated in any compiled autoloader proto, served by the gateway or not (yet)."""
    root = Path(autoloader.__file__).parent
    services = {}
    for file in sorted(root.glob("*/v*/*_pb2.py")):
        module = importlib.import_module(".".join(("autoloader", *file.relative_to(root).with_suffix("").parts)))
        services.update({s.full_name: s for s in module.DESCRIPTOR.services_by_name.values()})
    return {f"{r.http_method} {r.path}" for r in build_routes(services)}


def served_route_keys() -> list[str]:
    """Every route of the gateway: the annotated RPCs plus the routes app.py adds by hand."""
    return [f"{r.http_method} {r.path}" for r in build_routes()] + list(EXTRA_ROUTES)


def app_route_keys() -> set[str]:
    """What the Starlette app really routes (HEAD is Starlette's automatic companion of GET)."""
    app = create_app({"control": "127.0.0.1:1"})
    keys = set()
    for route in app.routes:
        assert isinstance(route, StarletteRoute), route
        keys |= {f"{method} {route.path}" for method in route.methods or () if method != "HEAD"}
    return keys


def expected_status(route_key: str, caller: str) -> int:
    if route_key not in HTTP_EXPECTED:
        pytest.fail(f"route {route_key} has no expected outcome in HTTP_EXPECTED")
    unauthenticated, *by_role = HTTP_EXPECTED[route_key]
    if caller in UNAUTHENTICATED_CALLERS:
        return unauthenticated
    return by_role[AUTHENTICATED_CALLERS.index(caller)]


def http_cases() -> list[Any]:
    cases = []
    for route_key in served_route_keys():
        for caller in ALL_CALLERS:
            cases.append(pytest.param(route_key, caller, id=f"{route_key}|{caller}"))
    return cases


def missing_target_cases() -> list[Any]:
    routes_with_variables = [key for key in served_route_keys() if "{" in key]
    return [
        pytest.param(route_key, caller, id=f"{route_key}|{caller}")
        for route_key in routes_with_variables
        for caller in AUTHENTICATED_CALLERS
    ]


# ----------------------------------------------------------------------------------------------- fixtures


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def ingestion_json(ingestion_id: str, source_uri: str) -> dict[str, Any]:
    return {
        "ingestion_id": ingestion_id,
        "name": "auth matrix",
        "source": {"uri": source_uri, "format": "csv"},
        "destination": {"table": "raw.auth_matrix"},
    }


@dataclass
class Principals:
    """Authorization header values by caller, who owns what, and a source directory.

    "own" ingestions belong to owner_name (the name of every *-own token); "shared" and "other" ones to
    another editor, who shares the "shared" ones with shared_name (the name of every *-shared token) at the
    editor role. The directory exists and stays empty: runs queued here are claimed by whichever executor
    worker shares the database later in the session (tests/conftest.py loading_stack), and must end at once.
    """

    headers: dict[str, str | None]
    owner_name: str
    owner_secret: str
    other_owner_secret: str
    shared_name: str
    other_name: str
    admin_secret: str
    source_uri: str
    token_secrets: list[str]
    # By relation: the ingestion and run that reads act on (see _reusable_target).
    read_targets: dict[str, tuple[str, str]] = field(default_factory=dict)

    def header(self, caller: str) -> dict[str, str]:
        value = self.headers[caller]
        return {} if value is None else {"Authorization": value}

    def metadata(self, caller: str) -> tuple[tuple[str, str], ...]:
        value = self.headers[caller]
        return () if value is None else (("authorization", value),)

    def name_of(self, caller: str) -> str:
        """The principal name of an authenticated caller's token."""
        names = {"own": self.owner_name, "shared": self.shared_name, "other": self.other_name}
        return names[caller.rsplit("-", 1)[-1]]

    def relation(self, caller: str) -> str:
        """own, shared or other: what the caller is to the ingestion it acts on (admins act on another's)."""
        return caller.rsplit("-", 1)[-1] if caller != ADMIN and caller in AUTHENTICATED_CALLERS else "other"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def principals(stack: InProcessStack, tmp_path_factory: pytest.TempPathFactory) -> Principals:
    source = tmp_path_factory.mktemp("auth-matrix-empty-source")
    names = {"own": unique("alice"), "shared": unique("carol"), "other": unique("dave")}
    owner = await stack.make_token(Role.EDITOR, name=names["own"])
    other_owner = await stack.make_token(Role.EDITOR, name=unique("bob"))
    headers = dict(UNAUTHENTICATED_CALLERS)
    secrets_made = [owner, other_owner]
    for role in ROLES:
        for relation in RELATIONS:
            secret = await stack.make_token(Role(role), name=names[relation])
            secrets_made.append(secret)
            headers[f"{role}-{relation}"] = f"Bearer {secret}"
    headers[ADMIN] = f"Bearer {stack.admin_token}"

    async with stack.http(stack.admin_token) as admin:
        created = await admin.post("/api/v1/tokens", json={"name": unique("revoked"), "role": "ROLE_EDITOR"})
        assert created.status_code == 200, created.text
        revoked = created.json()["secret"]
        async with stack.http(revoked) as before_revoke:
            assert (await before_revoke.get("/api/v1/ingestions")).status_code == 200
        token_id = created.json()["token"]["token_id"]
        revoke = await admin.delete(f"/api/v1/tokens/{token_id}")
        assert revoke.status_code == 200, revoke.text
        assert revoke.json()["token"]["revoke_time"]
    headers["revoked-token"] = f"Bearer {revoked}"
    return Principals(
        headers=headers,
        owner_name=names["own"],
        owner_secret=owner,
        other_owner_secret=other_owner,
        shared_name=names["shared"],
        other_name=names["other"],
        admin_secret=stack.admin_token,
        source_uri=source.as_uri() + "/",
        token_secrets=secrets_made,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous(stack: InProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.http() as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def admin(stack: InProcessStack) -> AsyncIterator[httpx.AsyncClient]:
    async with stack.http(stack.admin_token) as client:
        yield client


# ----------------------------------------------------------------------------------------------- HTTP


@dataclass
class Target:
    """A concrete request for a route, and the resources it acts on."""

    path: str
    body: dict[str, Any] | None
    ingestion_id: str | None = None
    token_id: str | None = None
    run_id: str | None = None
    principal: str | None = None


async def _make_ingestion(stack: InProcessStack, principals: Principals, caller: str) -> str:
    """A fresh ingestion that the caller owns, is shared, or was never given, as its relation says."""
    ingestion_id = unique("authz")
    relation = principals.relation(caller)
    owner_secret = principals.owner_secret if relation == "own" else principals.other_owner_secret
    async with stack.http(owner_secret) as owner:
        response = await owner.post("/api/v1/ingestions", json=ingestion_json(ingestion_id, principals.source_uri))
        assert response.status_code == 201, response.text
        if relation == "shared":
            share = {"principal": principals.shared_name, "role": "ROLE_EDITOR"}
            response = await owner.post(f"/api/v1/ingestions/{ingestion_id}/shares", json=share)
            assert response.status_code == 200, response.text
    return ingestion_id


async def _share(stack: InProcessStack, principals: Principals, caller: str, ingestion_id: str, name: str) -> None:
    owner_secret = principals.owner_secret if principals.relation(caller) == "own" else principals.other_owner_secret
    async with stack.http(owner_secret) as owner:
        share = {"principal": name, "role": "ROLE_VIEWER"}
        response = await owner.post(f"/api/v1/ingestions/{ingestion_id}/shares", json=share)
        assert response.status_code == 200, response.text


async def _reusable_target(stack: InProcessStack, principals: Principals, caller: str) -> tuple[str, str]:
    """(ingestion id, run id) that every read by a caller of this relation acts on; made once."""
    relation = principals.relation(caller)
    if relation not in principals.read_targets:
        run_id = await _make_run(stack, principals, caller)
        async with stack.http(stack.admin_token) as admin:
            ingestion_id = (await admin.get(f"/api/v1/runs/{run_id}")).json()["ingestion_id"]
        principals.read_targets[relation] = (ingestion_id, run_id)
    return principals.read_targets[relation]


async def _make_token(stack: InProcessStack) -> str:
    async with stack.http(stack.admin_token) as admin:
        response = await admin.post("/api/v1/tokens", json={"name": unique("victim"), "role": "ROLE_VIEWER"})
        assert response.status_code == 200, response.text
    token_id: str = response.json()["token"]["token_id"]
    return token_id


async def _make_run(stack: InProcessStack, principals: Principals, caller: str) -> str:
    ingestion_id = await _make_ingestion(stack, principals, caller)
    async with stack.http(stack.admin_token) as admin:
        response = await admin.post(f"/api/v1/ingestions/{ingestion_id}/run", json={})
        assert response.status_code == 202, response.text
    run_id: str = response.json()["run_id"]
    return run_id


# Request bodies of the routes that take one.
HTTP_BODIES: dict[str, Callable[[Principals], dict[str, Any]]] = {
    "POST /api/v1/ingestions": lambda p: ingestion_json(unique("created"), p.source_uri),
    "PATCH /api/v1/ingestions/{ingestion_id}": lambda p: {"name": "renamed by the auth matrix"},
    "POST /api/v1/ingestions/{ingestion_id}/run": lambda p: {},
    "POST /api/v1/runs/{run_id}/cancel": lambda p: {},
    "POST /api/v1/tokens": lambda p: {"name": unique("minted"), "role": "ROLE_VIEWER"},
    "POST /api/v1/ingestions/{ingestion_id}/shares": lambda p: {"principal": unique("erin"), "role": "ROLE_RUNNER"},
}


async def build_target(
    stack: InProcessStack, principals: Principals, route_key: str, caller: str, *, missing: bool = False
) -> Target:
    """A request for the route acting on fresh resources (or on ids that do not exist, when missing)."""
    method, template = route_key.split(" ", 1)
    route = next((r for r in build_routes() if r.http_method == method and r.path == template), None)
    target = Target(path=template, body=None)
    if route is not None and route.body:
        if route_key not in HTTP_BODIES:
            pytest.fail(f"route {route_key} takes a body but HTTP_BODIES has none for it")
        target.body = HTTP_BODIES[route_key](principals)
    if method == "GET" and not missing and ("{ingestion_id}" in template or "{run_id}" in template):
        # A read changes nothing (the snapshots around a refusal check it), so reads share one ingestion and
        # one run per relation instead of making their own: the matrix is large.
        target.ingestion_id, target.run_id = await _reusable_target(stack, principals, caller)
        if "{ingestion_id}" not in template:
            target.ingestion_id = None
    elif "{ingestion_id}" in template:
        target.ingestion_id = unique("missing") if missing else await _make_ingestion(stack, principals, caller)
    if "{token_id}" in template:
        target.token_id = "tok-00000000" if missing else await _make_token(stack)
    if "{run_id}" in template and target.run_id is None:
        target.run_id = f"run-{uuid.uuid4().hex}" if missing else await _make_run(stack, principals, caller)
    elif "{run_id}" not in template:
        target.run_id = None
    if "{principal}" in template:
        # Take away a share that exists: the owner first shares the ingestion with this name.
        target.principal = unique("frank")
        if not missing:
            await _share(stack, principals, caller, target.ingestion_id or "", target.principal)
    if "{path:path}" in template:
        template = template.replace("{path:path}", "no-such-file.js" if missing else "app.js")
    values = {
        "ingestion_id": target.ingestion_id,
        "token_id": target.token_id,
        "run_id": target.run_id,
        "principal": target.principal,
    }
    target.path = re.sub(r"\{(\w+)\}", lambda m: values.get(m[1]) or m[0], template)
    if "{" in target.path:
        pytest.fail(f"route {route_key}: build_target cannot fill {target.path}")
    return target


async def snapshot(admin: httpx.AsyncClient, target: Target) -> Any:
    """What the request could change, read as admin."""
    if target.ingestion_id:
        ingestion = await admin.get(f"/api/v1/ingestions/{target.ingestion_id}")
        runs = await admin.get(f"/api/v1/ingestions/{target.ingestion_id}/runs")
        shares = await admin.get(f"/api/v1/ingestions/{target.ingestion_id}/shares")
        return ingestion.status_code, ingestion.json(), runs.json(), shares.status_code, shares.json()
    if target.token_id:
        tokens = (await admin.get("/api/v1/tokens", params={"show_revoked": "true"})).json()["tokens"]
        return [t for t in tokens if t["token_id"] == target.token_id]
    if target.run_id:
        return (await admin.get(f"/api/v1/runs/{target.run_id}")).json()
    if target.body and "ingestion_id" in target.body:
        return (await admin.get(f"/api/v1/ingestions/{target.body['ingestion_id']}")).status_code
    if target.body and "name" in target.body:
        tokens = (await admin.get("/api/v1/tokens")).json()["tokens"]
        return [t for t in tokens if t["name"] == target.body["name"]]
    return None


async def assert_answers_like_a_missing_resource(
    stack: InProcessStack,
    principals: Principals,
    client: httpx.AsyncClient,
    route_key: str,
    caller: str,
    hidden: Target,
    response: httpx.Response,
) -> None:
    """A resource the caller may not see must not be told apart from one that does not exist."""
    missing = await build_target(stack, principals, route_key, caller, missing=True)
    answer = await client.request(
        route_key.split(" ", 1)[0], missing.path, json=missing.body, headers=principals.header(caller)
    )
    text = answer.text
    for attribute in ("ingestion_id", "run_id", "principal"):
        if getattr(missing, attribute):
            text = text.replace(getattr(missing, attribute), getattr(hidden, attribute))
    assert answer.status_code == response.status_code
    assert response.json() == json.loads(text)


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text}"
    body = response.json()
    assert body["code"] == GRPC_CODE_BY_HTTP_STATUS[status], body
    assert body["message"]
    if status == 401:
        assert response.headers.get("www-authenticate") == "Bearer"
    else:
        assert "www-authenticate" not in response.headers


def test_every_route_the_app_serves_has_an_expected_outcome() -> None:
    served = app_route_keys()
    assert set(served_route_keys()) == served, "EXTRA_ROUTES is out of date with gateway/app.py"
    missing = served - set(HTTP_EXPECTED)
    assert not missing, f"served routes without an expected outcome in HTTP_EXPECTED: {sorted(missing)}"
    missing = {key for key in served if "{" in key} - set(HTTP_EXPECTED_MISSING_TARGET)
    assert not missing, f"routes without an outcome in HTTP_EXPECTED_MISSING_TARGET: {sorted(missing)}"
    # Entries may run ahead of the gateway only for routes a proto already declares; anything else is stale.
    known = served | annotated_route_keys()
    stale = (set(HTTP_EXPECTED) | set(HTTP_EXPECTED_MISSING_TARGET)) - known
    assert not stale, f"table entries for routes that exist nowhere: {sorted(stale)}"


@pytest.mark.parametrize(("route_key", "caller"), http_cases())
async def test_http_route_access(
    stack: InProcessStack,
    principals: Principals,
    anonymous: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    route_key: str,
    caller: str,
) -> None:
    status = expected_status(route_key, caller)
    method = route_key.split(" ", 1)[0]
    # Authentication comes before any lookup, so callers without a valid token need no real resources.
    unauthenticated = caller in UNAUTHENTICATED_CALLERS and route_key not in CONSOLE
    target = await build_target(stack, principals, route_key, caller, missing=unauthenticated)
    before = await snapshot(admin, target)

    response = await anonymous.request(method, target.path, json=target.body, headers=principals.header(caller))

    if status >= 400:
        assert_error(response, status)
        assert await snapshot(admin, target) == before, "a refused request changed something"
        if status == 404:
            await assert_answers_like_a_missing_resource(
                stack, principals, anonymous, route_key, caller, target, response
            )
        return
    assert response.status_code == status, response.text
    if route_key == "POST /api/v1/ingestions" and caller != ADMIN:
        assert response.json()["owner"] == principals.name_of(caller)
    if route_key in VISIBLE_MUTATIONS:
        assert await snapshot(admin, target) != before, "an accepted mutation changed nothing"


@pytest.mark.parametrize(("route_key", "caller"), missing_target_cases())
async def test_http_route_on_missing_resource(
    stack: InProcessStack,
    principals: Principals,
    anonymous: httpx.AsyncClient,
    route_key: str,
    caller: str,
) -> None:
    if route_key not in HTTP_EXPECTED_MISSING_TARGET:
        pytest.fail(f"route {route_key} has no expected outcome in HTTP_EXPECTED_MISSING_TARGET")
    status = HTTP_EXPECTED_MISSING_TARGET[route_key][AUTHENTICATED_CALLERS.index(caller)]
    target = await build_target(stack, principals, route_key, caller, missing=True)

    response = await anonymous.request(
        route_key.split(" ", 1)[0], target.path, json=target.body, headers=principals.header(caller)
    )

    assert_error(response, status)


async def test_healthz_reports_every_backend_serving(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/healthz")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "SERVING",
        "services": {"control": "SERVING", "tracker": "SERVING", "executor": "SERVING"},
    }


async def test_token_secrets_are_never_listed(admin: httpx.AsyncClient, principals: Principals) -> None:
    response = await admin.get("/api/v1/tokens", params={"show_revoked": "true"})

    assert response.status_code == 200, response.text
    assert all("secret" not in token for token in response.json()["tokens"])
    for secret in (*principals.token_secrets, principals.admin_secret):
        assert secret not in response.text


# ----------------------------------------------------------------------------------------------- gRPC

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
TIMED_OUT = grpc.StatusCode.DEADLINE_EXCEEDED
CONTROL_SERVICE = pb.DESCRIPTOR.services_by_name["ControlService"]

GRPC_CODE_OF = {200: OK, 201: OK, 202: OK, 403: DENIED, 404: NOT_FOUND, 504: TIMED_OUT}


def _grpc_table(http_table: dict[str, tuple[int, ...]], skip_unauthenticated: bool) -> dict[str, tuple[Any, ...]]:
    """The same rights over gRPC as over HTTP: each RPC's expectations are its route's, as codes."""
    table = {}
    for route in build_routes():
        key = f"{route.http_method} {route.path}"
        if route.backend == "control" and key in http_table:
            statuses = http_table[key][1:] if skip_unauthenticated else http_table[key]
            table[route.method.name] = tuple(GRPC_CODE_OF[status] for status in statuses)
    return table


# Status of each RPC for each authenticated caller (unauthenticated callers: always UNAUTHENTICATED).
GRPC_EXPECTED = _grpc_table(HTTP_EXPECTED, skip_unauthenticated=True)
# Status when the request names an ingestion, run or token that does not exist.
GRPC_EXPECTED_MISSING_TARGET = _grpc_table(HTTP_EXPECTED_MISSING_TARGET, skip_unauthenticated=False)


def _grpc_ingestion(source_uri: str) -> pb.Ingestion:
    return pb.Ingestion(
        ingestion_id=unique("grpc"),
        name="auth matrix over gRPC",
        source=pb.Source(uri=source_uri, format="json"),
        destination=pb.Destination(table="raw.grpc_matrix"),
    )


@dataclass(frozen=True)
class GrpcTarget:
    """What an RPC acts on: an ingestion, a token, and the source directory new ingestions read."""

    ingestion_id: str
    token_id: str
    source_uri: str
    run_id: str = ""
    principal: str = ""


GRPC_REQUESTS: dict[str, Callable[[GrpcTarget], Message]] = {
    "CreateIngestion": lambda t: pb.CreateIngestionRequest(ingestion=_grpc_ingestion(t.source_uri)),
    "ListIngestions": lambda t: pb.ListIngestionsRequest(page_size=5),
    "GetIngestion": lambda t: pb.GetIngestionRequest(ingestion_id=t.ingestion_id),
    "UpdateIngestion": lambda t: pb.UpdateIngestionRequest(
        ingestion_id=t.ingestion_id,
        ingestion=pb.Ingestion(name="renamed over gRPC"),
        update_mask=field_mask_pb2.FieldMask(paths=["name"]),
    ),
    "DeleteIngestion": lambda t: pb.DeleteIngestionRequest(ingestion_id=t.ingestion_id),
    "RunIngestion": lambda t: pb.RunIngestionRequest(ingestion_id=t.ingestion_id),
    "ListIngestionRuns": lambda t: pb.ListIngestionRunsRequest(ingestion_id=t.ingestion_id),
    "ListProcessedFiles": lambda t: pb.ListProcessedFilesRequest(ingestion_id=t.ingestion_id),
    "ClearProcessedFiles": lambda t: pb.ClearProcessedFilesRequest(ingestion_id=t.ingestion_id),
    "GetIngestionSchema": lambda t: pb.GetIngestionSchemaRequest(ingestion_id=t.ingestion_id),
    "PreviewIngestion": lambda t: pb.PreviewIngestionRequest(ingestion_id=t.ingestion_id),
    "ListScheduleTicks": lambda t: pb.ListScheduleTicksRequest(ingestion_id=t.ingestion_id),
    "ListWebhookDeliveries": lambda t: pb.ListWebhookDeliveriesRequest(ingestion_id=t.ingestion_id),
    "CancelRun": lambda t: pb.CancelRunRequest(run_id=t.run_id),
    "GetRun": lambda t: pb.GetRunRequest(run_id=t.run_id),
    "ShareIngestion": lambda t: pb.ShareIngestionRequest(
        ingestion_id=t.ingestion_id, principal=unique("erin"), role=pb.ROLE_RUNNER
    ),
    "ListIngestionShares": lambda t: pb.ListIngestionSharesRequest(ingestion_id=t.ingestion_id),
    "UnshareIngestion": lambda t: pb.UnshareIngestionRequest(ingestion_id=t.ingestion_id, principal=t.principal),
    "ListAuditEvents": lambda t: pb.ListAuditEventsRequest(page_size=5),
    "GetCaller": lambda t: pb.GetCallerRequest(),
    "CreateToken": lambda t: pb.CreateTokenRequest(name=unique("grpc"), role=pb.ROLE_VIEWER),
    "ListTokens": lambda t: pb.ListTokensRequest(),
    "RevokeToken": lambda t: pb.RevokeTokenRequest(token_id=t.token_id),
}


def grpc_cases() -> list[Any]:
    """Every ControlService RPC (from its descriptor, not from the table) with every caller."""
    return [
        pytest.param(method.name, caller, id=f"{method.name}|{caller}")
        for method in CONTROL_SERVICE.methods
        for caller in ALL_CALLERS
    ]


@pytest_asyncio.fixture(loop_scope="session")
async def control(stack: InProcessStack) -> AsyncIterator[pb_grpc.ControlServiceStub]:
    async with grpc.aio.insecure_channel(stack.control.address) as channel:
        yield pb_grpc.ControlServiceStub(channel)


async def call(
    stub: pb_grpc.ControlServiceStub, method: str, request: Message, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, Any]:
    rpc: Callable[..., Awaitable[Any]] = getattr(stub, method)
    try:
        return OK, await rpc(request, metadata=metadata, timeout=30)
    except grpc.aio.AioRpcError as error:
        return error.code(), error


def test_every_control_rpc_has_an_expected_outcome() -> None:
    names = {method.name for method in CONTROL_SERVICE.methods}
    assert set(GRPC_EXPECTED) == names
    assert set(GRPC_REQUESTS) == names
    targeted = {
        m.name
        for m in CONTROL_SERVICE.methods
        if {"ingestion_id", "token_id", "run_id"} & set(m.input_type.fields_by_name)
    } - {"CreateIngestion", "ListAuditEvents"}  # these carry an id as content or as a filter, not as a target
    assert set(GRPC_EXPECTED_MISSING_TARGET) == targeted


@pytest.mark.parametrize(("method", "caller"), grpc_cases())
async def test_grpc_method_access(
    stack: InProcessStack,
    principals: Principals,
    control: pb_grpc.ControlServiceStub,
    admin: httpx.AsyncClient,
    method: str,
    caller: str,
) -> None:
    if method not in GRPC_EXPECTED or method not in GRPC_REQUESTS:
        pytest.fail(f"RPC {method} has no expected outcome or request in this module")
    expected = (
        UNAUTHENTICATED
        if caller in UNAUTHENTICATED_CALLERS
        else GRPC_EXPECTED[method][AUTHENTICATED_CALLERS.index(caller)]
    )
    if caller in UNAUTHENTICATED_CALLERS:
        # Authentication comes before any lookup: ids that exist nowhere do, and nothing can change.
        target = GrpcTarget(unique("missing"), "tok-00000000", principals.source_uri, "run-0", "frank")
        code, result = await call(control, method, GRPC_REQUESTS[method](target), principals.metadata(caller))
        assert code == UNAUTHENTICATED, result
        return
    token_id = await _make_token(stack) if method == "RevokeToken" else "tok-00000000"
    if method.startswith(("Get", "List", "Preview")):
        ingestion_id, run_id = await _reusable_target(stack, principals, caller)  # reads change nothing
    else:
        ingestion_id = await _make_ingestion(stack, principals, caller)
        run_id = await _make_run(stack, principals, caller) if method == "CancelRun" else ""
    shared_with = ""
    if method == "UnshareIngestion":
        shared_with = unique("frank")
        await _share(stack, principals, caller, ingestion_id, shared_with)
    before = await snapshot(admin, Target(path="", body=None, ingestion_id=ingestion_id))
    run_before = await snapshot(admin, Target(path="", body=None, run_id=run_id)) if run_id else None

    code, result = await call(
        control,
        method,
        GRPC_REQUESTS[method](GrpcTarget(ingestion_id, token_id, principals.source_uri, run_id, shared_with)),
        principals.metadata(caller),
    )

    assert code == expected, result
    if code != OK:
        assert result.details(), "a refusal must say why"
        assert await snapshot(admin, Target(path="", body=None, ingestion_id=ingestion_id)) == before
        if run_id:
            assert await snapshot(admin, Target(path="", body=None, run_id=run_id)) == run_before
    elif method == "CreateIngestion" and caller != ADMIN:
        assert result.ingestion.owner == principals.name_of(caller)


@pytest.mark.parametrize(
    ("method", "caller"),
    [
        pytest.param(method, caller, id=f"{method}|{caller}")
        for method in GRPC_EXPECTED_MISSING_TARGET
        for caller in AUTHENTICATED_CALLERS
    ],
)
async def test_grpc_method_on_missing_resource(
    principals: Principals, control: pb_grpc.ControlServiceStub, method: str, caller: str
) -> None:
    expected = GRPC_EXPECTED_MISSING_TARGET[method][AUTHENTICATED_CALLERS.index(caller)]
    request = GRPC_REQUESTS[method](
        GrpcTarget(unique("missing"), "tok-00000000", principals.source_uri, f"run-{uuid.uuid4().hex}", unique("frank"))
    )

    code, result = await call(control, method, request, principals.metadata(caller))

    assert code == expected, result


@pytest.mark.parametrize("service", ["control", "tracker", "executor"])
async def test_grpc_health_answers_serving_without_a_token(stack: InProcessStack, service: str) -> None:
    address = getattr(stack, service).address
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)

    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_grpc_refusal_carries_no_secret(principals: Principals, control: pb_grpc.ControlServiceStub) -> None:
    wrong = "alk_" + secrets.token_urlsafe(32)

    code, error = await call(
        control, "ListIngestions", pb.ListIngestionsRequest(), (("authorization", f"Bearer {wrong}"),)
    )

    assert code == UNAUTHENTICATED
    assert wrong not in error.details()
