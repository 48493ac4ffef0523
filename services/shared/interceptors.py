"""The server-side chain every RPC passes through: request context → auth → access log → error→status.

Handlers are wrapped (rather than using bare interceptor hooks) so the principal and request id are
bound in the same task that runs the servicer method.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from services.shared.auth import Principal, Role
from services.shared.errors import GENERIC_INTERNAL_MESSAGE, AutoloaderError, InvalidArgument, PermissionDenied
from services.shared.logging import get_logger
from services.shared.nul_guard import nul_violations
from services.shared.token_repository import Authenticator

# Probes and tooling call these without a token.
UNAUTHENTICATED_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
STATUS_DETAILS_KEY = "grpc-status-details-bin"

current_principal: ContextVar[Principal] = ContextVar("current_principal")
# The caller's credentials and request id, forwarded when this service calls another on its behalf.
_forwarded: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("forwarded_metadata", default=())
_log = get_logger("rpc")


@dataclass(frozen=True)
class CallRecord:
    """A finished call, for observers such as the audit log. caller is None when authentication failed."""

    method: str
    request: Any
    caller: Principal | None
    code: grpc.StatusCode
    request_id: str


CallObserver = Callable[[CallRecord], Awaitable[None]]


def principal() -> Principal:
    """The authenticated caller of the RPC being served."""
    return current_principal.get()


def forwarded_metadata() -> tuple[tuple[str, str], ...]:
    return _forwarded.get()


def as_service(token: str) -> tuple[tuple[str, str], ...]:
    """Metadata of a call this service makes with its own token, keeping the request id of the call it serves."""
    request_id = dict(_forwarded.get()).get("x-request-id") or uuid.uuid4().hex
    return (("authorization", f"Bearer {token}"), ("x-request-id", request_id))


@contextlib.contextmanager
def acting_as(token: str) -> Iterator[None]:
    """Calls made inside carry this service token: for background work that no request started."""
    reset = _forwarded.set((("authorization", f"Bearer {token}"), ("x-request-id", uuid.uuid4().hex)))
    try:
        yield
    finally:
        _forwarded.reset(reset)


def status_proto(error: AutoloaderError) -> status_pb2.Status:
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    if error.violations:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                    for v in error.violations
                ]
            )
        )
        status.details.append(detail)
    return status


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: AutoloaderError) -> None:
    await context.abort(
        error.code,
        error.message,
        trailing_metadata=((STATUS_DETAILS_KEY, status_proto(error).SerializeToString()),),
    )


class ServiceInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(
        self,
        authenticator: Authenticator,
        on_call: Callable[[str, str, float], None] = lambda *_: None,
        *,
        minimum_role: Role = Role.VIEWER,
        observe: CallObserver | None = None,
    ) -> None:
        self._authenticator = authenticator
        self._on_call = on_call  # (method, status code name, seconds): for metrics
        # Services that only other services call (tracker, executor) admit service (admin-role) tokens only.
        self._minimum_role = minimum_role
        self._observe = observe

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(UNAUTHENTICATED_METHOD_PREFIXES):
            return handler
        method = details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_unary(handler.stream_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _wrap_unary(self, behavior: Callable[..., Awaitable[Any]], method: str) -> Callable[..., Awaitable[Any]]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._call_scope(context, method, request):
                return await behavior(request, context)

        return wrapped

    def _wrap_stream(self, behavior: Callable[..., AsyncIterator[Any]], method: str) -> Callable[..., Any]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with self._call_scope(context, method, request):
                async for item in behavior(request, context):
                    yield item

        return wrapped

    @contextlib.asynccontextmanager
    async def _call_scope(
        self, context: grpc.aio.ServicerContext[Any, Any], method: str, request: Any
    ) -> AsyncIterator[None]:
        """Bind the request id, authenticate, log one access line, and turn errors into statuses."""
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        started = time.monotonic()
        code = grpc.StatusCode.OK
        request_id = metadata.get("x-request-id") or uuid.uuid4().hex
        caller: Principal | None = None
        with structlog.contextvars.bound_contextvars(request_id=request_id, method=method):
            try:
                caller = await self._authenticator.authenticate(metadata.get("authorization"))
                if caller.role.rank < self._minimum_role.rank:
                    raise PermissionDenied(
                        f"this service serves other services only and needs a {self._minimum_role.value}-role token;"
                        " use the control API"
                    )
                if isinstance(request, Message) and (violations := nul_violations(request)):
                    raise InvalidArgument.of(violations)
                reset = current_principal.set(caller)
                reset_forwarded = _forwarded.set(
                    (("authorization", metadata.get("authorization", "")), ("x-request-id", request_id))
                )
                try:
                    with structlog.contextvars.bound_contextvars(principal=caller.name, token_id=caller.token_id):
                        yield
                finally:
                    current_principal.reset(reset)
                    _forwarded.reset(reset_forwarded)
            except AutoloaderError as error:
                code = error.code
                await _abort(context, error)
            except NotImplementedError:
                code = grpc.StatusCode.UNIMPLEMENTED
                await context.abort(code, f"{method} is not implemented")
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                _log.exception("rpc failed")
                await context.abort(grpc.StatusCode.INTERNAL, GENERIC_INTERNAL_MESSAGE)
            finally:
                elapsed = time.monotonic() - started
                self._on_call(method, code.name, elapsed)
                _log.info("rpc", code=code.name, duration_ms=round(elapsed * 1000, 1))
                if self._observe is not None:
                    await self._observe(CallRecord(method, request, caller, code, request_id))
