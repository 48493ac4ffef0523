"""The SDK's exceptions: one class per gRPC status code, raised alike by the gRPC and the HTTP client.

A gRPC error carries its field violations in the `grpc-status-details-bin` trailer (a google.rpc.Status
holding a google.rpc.BadRequest); an HTTP error carries the same Status as its JSON body
`{"code", "message", "details"}`. Both decode to the same exception with the same `violations`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.rpc import error_details_pb2, status_pb2

if TYPE_CHECKING:
    from autoloader.tracker.v1 import tracker_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"
_BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request: its path (e.g. `source.uri`) and what is wrong with it."""

    field: str
    description: str


class AutoloaderError(Exception):
    """Base of every error the SDK raises. `code` is the gRPC status code, also for errors of the HTTP API."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode | None = None,
        violations: Iterable[FieldViolation] = (),
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        # Set by the HTTP client: the response's status (a 405 and a 400 share INVALID_ARGUMENT).
        self.http_status = http_status


class InvalidArgument(AutoloaderError):
    """The request is invalid; `violations` names the fields and the reasons."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class FailedPrecondition(AutoloaderError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class OutOfRange(AutoloaderError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unauthenticated(AutoloaderError):
    """No token, a malformed one, or a revoked one."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(AutoloaderError):
    """The token's role (or its share of the ingestion) does not allow the call."""

    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(AutoloaderError):
    """Unknown id, or one the caller may not see (the API answers both alike)."""

    code = grpc.StatusCode.NOT_FOUND


class Conflict(AutoloaderError):
    """HTTP 409: the resource's state refuses the call (an active run, an ended run, a paused ingestion)."""

    code = grpc.StatusCode.ABORTED


class AlreadyExists(Conflict):
    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(Conflict):
    code = grpc.StatusCode.ABORTED


class ResourceExhausted(AutoloaderError):
    """Rate limited (HTTP 429); `retry_after` is the server's hint in seconds, when it gave one."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    retry_after: float | None = None


class Unavailable(AutoloaderError):
    """The service (or one behind it) cannot be reached; retrying later may work."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(AutoloaderError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(AutoloaderError):
    code = grpc.StatusCode.CANCELLED


class InternalError(AutoloaderError):
    """The service failed; its log has the details."""

    code = grpc.StatusCode.INTERNAL


class ConfigurationError(AutoloaderError):
    """The client cannot be set up: no address or token found, or TLS files that cannot be used."""


class TlsConfigError(ConfigurationError):
    """TLS files that cannot be used; the message names the AUTOLOADER_TLS_* variable to fix."""


class RunTimeout(AutoloaderError, TimeoutError):
    """wait_for_run gave up before the run ended; `run` is the run as last seen."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED

    def __init__(self, run: tracker_pb2.Run, timeout: float) -> None:
        super().__init__(f"run {run.run_id} did not end within {timeout:g}s (last status {run.status})")
        self.run = run
        self.timeout = timeout


_CLASS_BY_CODE: dict[grpc.StatusCode, type[AutoloaderError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        FailedPrecondition,
        OutOfRange,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        AlreadyExists,
        Aborted,
        ResourceExhausted,
        Unavailable,
        DeadlineExceeded,
        Cancelled,
        InternalError,
    )
} | {grpc.StatusCode.UNKNOWN: InternalError, grpc.StatusCode.DATA_LOSS: InternalError}

_CODE_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}

# When an HTTP error body has no usable gRPC code (a proxy's page, say), its status decides.
_CODE_BY_HTTP_STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def error_for(
    code: grpc.StatusCode,
    message: str,
    violations: Iterable[FieldViolation] = (),
    http_status: int | None = None,
) -> AutoloaderError:
    """The exception of a status code; codes without a class of their own give the base class."""
    error_type = _CLASS_BY_CODE.get(code, AutoloaderError)
    return error_type(message or code.name, code=code, violations=violations, http_status=http_status)


def _bad_request_violations(status: status_pb2.Status) -> list[FieldViolation]:
    found = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            found += [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
    return found


def from_rpc_error(error: grpc.RpcError) -> AutoloaderError:
    """The SDK exception of a failed gRPC call, with the field violations from its status details."""
    call: Any = error  # a grpc.RpcError raised by a call is also a grpc.Call
    code: grpc.StatusCode = call.code()
    violations: list[FieldViolation] = []
    for key, value in call.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            violations += _bad_request_violations(status_pb2.Status.FromString(value))
    return error_for(code, call.details() or "", violations)


def _violations_from_json(details: Any) -> list[FieldViolation]:
    found = []
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, Mapping) or detail.get("@type") != _BAD_REQUEST_TYPE:
            continue
        for violation in detail.get("field_violations") or detail.get("fieldViolations") or []:
            if isinstance(violation, Mapping):
                found.append(FieldViolation(str(violation.get("field", "")), str(violation.get("description", ""))))
    return found


def from_http_error(http_status: int, body: bytes, retry_after: str | None = None) -> AutoloaderError:
    """The SDK exception of an HTTP error response: its google.rpc.Status body, else its status code."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, Mapping):
        value = {}
    number = value.get("code")
    code = _CODE_BY_NUMBER.get(number) if isinstance(number, int) and number != 0 else None
    if code is None:
        code = _CODE_BY_HTTP_STATUS.get(http_status, grpc.StatusCode.UNKNOWN)
    message = str(value.get("message") or f"HTTP {http_status}")
    error = error_for(code, message, _violations_from_json(value.get("details")), http_status=http_status)
    if isinstance(error, ResourceExhausted) and retry_after:
        with contextlib.suppress(ValueError):
            error.retry_after = float(retry_after)
    return error
