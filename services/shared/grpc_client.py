"""Calling another service: forward the caller's credentials and request id, and turn its errors back
into our exception tree so they keep their code (a tracker 409 stays a 409)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2

from services.shared import errors
from services.shared.interceptors import STATUS_DETAILS_KEY, forwarded_metadata

T = TypeVar("T")

_ERROR_BY_CODE: dict[grpc.StatusCode, type[errors.AutoloaderError]] = {
    cls.code: cls
    for cls in (
        errors.InvalidArgument,
        errors.FailedPrecondition,
        errors.Unauthenticated,
        errors.PermissionDenied,
        errors.NotFound,
        errors.AlreadyExists,
        errors.Aborted,
        errors.ResourceExhausted,
        errors.Unavailable,
        errors.DeadlineExceeded,
    )
}


def _violations(error: grpc.aio.AioRpcError) -> list[errors.FieldViolation]:
    """The field violations the other service attached (google.rpc.Status in the trailing metadata)."""
    found = []
    for key, value in error.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                found += [errors.FieldViolation(v.field, v.description) for v in bad_request.field_violations]
    return found


def translate(error: grpc.aio.AioRpcError, service: str) -> errors.AutoloaderError:
    error_type = _ERROR_BY_CODE.get(error.code())
    if error_type is None:
        return errors.Unavailable(f"{service} failed: {error.code().name}")
    return error_type(error.details() or error.code().name, violations=_violations(error))


async def call(
    service: str,
    rpc: Callable[..., Awaitable[T]],
    request: object,
    timeout: float = 30.0,
    metadata: tuple[tuple[str, str], ...] | None = None,
) -> T:
    """Make a unary call with the given metadata, else on behalf of the current caller."""
    try:
        return await rpc(request, metadata=forwarded_metadata() if metadata is None else metadata, timeout=timeout)
    except grpc.aio.AioRpcError as e:
        raise translate(e, service) from e


@asynccontextmanager
async def translated(service: str) -> AsyncIterator[None]:
    try:
        yield
    except grpc.aio.AioRpcError as e:
        raise translate(e, service) from e
