"""The REST gateway: serves the routes annotated in the protos by calling the gRPC services."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autoloader.control.v1 import control_pb2
from gateway import errors
from gateway.clients import Backends
from gateway.console import console_routes
from gateway.openapi import build_openapi
from gateway.rate_limit import MonotonicClock, RateLimiter, caller_key, retry_after_seconds
from gateway.routes import Route, build_routes
from gateway.transcode import request_from_http, response_to_json
from services.shared.errors import (
    AutoloaderError,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
)
from services.shared.logging import get_logger
from services.shared.metrics import ServiceMetrics
from services.shared.tls import ChannelFactory

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_HEADER_SAFE = re.compile(r"^[\x20-\x7e]*$")
_log = get_logger("http")


class PayloadTooLarge(AutoloaderError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _metadata(request: Request) -> list[tuple[str, str]]:
    """gRPC metadata for a backend call: the request id and the caller's credentials, passed on as they are."""
    metadata = [("x-request-id", request.state.request_id)]
    authorization = request.headers.get("authorization")
    if authorization is not None:
        if not _HEADER_SAFE.match(authorization):
            raise Unauthenticated("malformed authorization header")
        metadata.append(("authorization", authorization))
    return metadata


class HttpMetrics:
    def __init__(self) -> None:
        self.service = ServiceMetrics("gateway")
        self._requests = self.service.counter(
            "autoloader_http_requests", "HTTP API requests, by route and status", ["route", "status"]
        )
        self._seconds = self.service.histogram(
            "autoloader_http_request_duration_seconds", "Time to answer an HTTP API request", ["route"]
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        self._requests.labels(route=route, status=str(status)).inc()
        self._seconds.labels(route=route).observe(seconds)


def _too_many_requests(limiter: RateLimiter, wait: float) -> Response:
    seconds = retry_after_seconds(wait)
    response = errors.from_error(
        ResourceExhausted(
            f"rate limit exceeded: {limiter.rate_per_second:g} requests per second (bursts of up to"
            f" {limiter.burst}) per token, or per client address without one; retry after {seconds} s"
        )
    )
    response.headers["Retry-After"] = str(seconds)
    return response


def _endpoint(
    route: Route, backends: Backends, max_body_bytes: int, metrics: HttpMetrics, limiter: RateLimiter
) -> Callable[[Request], Awaitable[Response]]:
    route_key = f"{route.http_method} {route.path}"

    async def endpoint(request: Request) -> Response:
        started = time.monotonic()
        # Checked here rather than in a middleware so refusals are counted under their route like any answer.
        wait = limiter.acquire(caller_key(request))
        response = await answer(request) if wait == 0 else _too_many_requests(limiter, wait)
        metrics.observe(route_key, response.status_code, time.monotonic() - started)
        return response

    async def answer(request: Request) -> Response:
        try:
            body = await _read_body(request, max_body_bytes) if route.body else b""
            message = request_from_http(
                route, dict(request.path_params), list(request.query_params.multi_items()), body
            )
            response = await backends.call(route, message, _metadata(request))
        except PayloadTooLarge as error:
            response_413 = errors.from_error(error)
            response_413.status_code = 413
            return response_413
        except AutoloaderError as error:
            return errors.from_error(error)
        except grpc.aio.AioRpcError as error:
            return errors.from_rpc_error(error)
        return JSONResponse(response_to_json(route, response), status_code=route.success_status)

    return endpoint


async def _backend_health(backends: Backends) -> dict[str, str]:
    states = {}
    for name in backends.names:
        stub = health_pb2_grpc.HealthStub(backends.channel(name))
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            states[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as error:
            states[name] = f"UNREACHABLE ({error.code().name})"
    return states


class RequestContextMiddleware:
    """Request id (taken from x-request-id or made), bound for logs, echoed back; one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.monotonic()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self._app(scope, receive, send_with_id)
            finally:
                _log.info(
                    "request",
                    http_method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.monotonic() - started) * 1000, 1),
                )


def _allowed_methods(app: Starlette, scope: Scope) -> list[str]:
    """Methods of every route whose path matches (several routes may share one path)."""
    allowed: set[str] = set()
    for route in app.routes:
        match, _ = route.matches(scope)
        if match is Match.PARTIAL and isinstance(route, StarletteRoute):
            allowed |= route.methods or set()
    return sorted(allowed)


def create_app(
    backend_addresses: dict[str, str],
    *,
    max_body_bytes: int = 1_048_576,
    rate_limit_per_second: float = 0.0,
    rate_limit_burst: int = 100,
    rate_limit_clock: MonotonicClock = time.monotonic,
    open_channel: ChannelFactory | None = None,
) -> Starlette:
    """The gateway app. Rate limiting is off unless asked for: `python -m gateway serve` passes the configured
    limit (on by default there); in-process stacks for tests and benchmarks keep their callers unthrottled."""
    routes = build_routes()
    limiter = RateLimiter(rate_limit_per_second, rate_limit_burst, clock=rate_limit_clock)
    backends = Backends(backend_addresses, open_channel)  # TLS channels when the caller passes a factory
    openapi = build_openapi(routes)
    metrics = HttpMetrics()

    async def prometheus(request: Request) -> Response:
        # Unauthenticated, like most scrape targets: counts and timings by route, nothing about callers.
        return Response(generate_latest(metrics.service.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        states = await _backend_health(backends)
        serving = all(state == "SERVING" for state in states.values())
        body = {"status": "SERVING" if serving else "NOT_SERVING", "services": states}
        return JSONResponse(body, status_code=200 if serving else 503)

    whoami = next(r for r in routes if r.method.name == "GetCaller")

    async def openapi_json(request: Request) -> Response:
        # Like every route but /healthz, the document needs a valid token; the control service checks it.
        try:
            await backends.call(whoami, control_pb2.GetCallerRequest(), _metadata(request))
        except AutoloaderError as error:
            return errors.from_error(error)
        except grpc.aio.AioRpcError as error:
            return errors.from_rpc_error(error)
        return JSONResponse(openapi)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return errors.from_error(NotFound(f"no route for {request.url.path}"))
        if exc.status_code == 405:
            response = errors.from_error(InvalidArgument(f"method {request.method} is not allowed here"))
            response.status_code = 405
            response.headers["Allow"] = ", ".join(_allowed_methods(request.app, request.scope))
            return response
        return errors.from_error(InvalidArgument(str(exc.detail)))

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        _log.exception("unhandled error", exc_info=exc)
        return errors.from_error(AutoloaderError("internal error; see the gateway log for details"))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        backends.open()
        yield
        await backends.close()

    app = Starlette(
        routes=[
            *[
                StarletteRoute(
                    r.path, _endpoint(r, backends, max_body_bytes, metrics, limiter), methods=[r.http_method]
                )
                for r in routes
            ],
            # Not rate limited: probes, scrapers and the API description must answer even when a caller is not.
            StarletteRoute("/healthz", healthz, methods=["GET"]),
            StarletteRoute("/metrics", prometheus, methods=["GET"]),
            StarletteRoute("/api/v1/openapi.json", openapi_json, methods=["GET"]),
            # The web console: static pages that sign in with a token and call the API above.
            *console_routes(),
        ],
        exception_handlers={HTTPException: http_error, Exception: unexpected_error},
        lifespan=lifespan,
    )
    app.add_middleware(RequestContextMiddleware)
    return app
