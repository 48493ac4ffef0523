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
from typing import Any

import grpc
import structlog
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from services.shared.auth import Principal
from services.shared.errors import GENERIC_INTERNAL_MESSAGE, AutoloaderError
from services.shared.logging import get_logger
from services.shared.token_repository import Authenticator

# Probes and tooling call these without a token.
UNAUTHENTICATED_METHOD_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
STATUS_DETAILS_KEY = "grpc-status-details-bin"

current_principal: ContextVar[Principal] = ContextVar("current_principal")
# The caller's credentials and request id, forwarded when this service calls another on its behalf.
_forwarded: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("forwarded_metadata", default=())
_log = get_logger("rpc")


def principal() -> Principal:
    """The authenticated caller of the RPC being served."""
    return current_principal.get()


def forwarded_metadata() -> tuple[tuple[str, str], ...]:
    return _forwarded.get()


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
        self, authenticator: Authenticator, on_call: Callable[[str, str, float], None] = lambda *_: None
    ) -> None:
        self._authenticator = authenticator
        self._on_call = on_call  # (method, status code name, seconds): for metrics

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
            async with self._call_scope(context, method):
                return await behavior(request, context)

        return wrapped

    def _wrap_stream(self, behavior: Callable[..., AsyncIterator[Any]], method: str) -> Callable[..., Any]:
        async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with self._call_scope(context, method):
                async for item in behavior(request, context):
                    yield item

        return wrapped

    @contextlib.asynccontextmanager
    async def _call_scope(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> AsyncIterator[None]:
        """Bind the request id, authenticate, log one access line, and turn errors into statuses."""
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        started = time.monotonic()
        code = grpc.StatusCode.OK
        request_id = metadata.get("x-request-id") or uuid.uuid4().hex
        with structlog.contextvars.bound_contextvars(request_id=request_id, method=method):
            try:
                caller = await self._authenticator.authenticate(metadata.get("authorization"))
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
