"""One exception tree for the whole product, each class carrying its gRPC status code.

Errors are mapped once for gRPC (interceptors.py) and once for HTTP (gateway/errors.py).
Anything that is not an AutoloaderError becomes INTERNAL with a generic message.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class FieldViolation:
    """A field that failed validation, named by its JSON path (e.g. "source.uri")."""

    field: str
    description: str


class AutoloaderError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, violations: list[FieldViolation] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []


class InvalidArgument(AutoloaderError):
    code = grpc.StatusCode.INVALID_ARGUMENT

    @classmethod
    def of(cls, violations: list[FieldViolation]) -> InvalidArgument:
        """One error that lists every violation, the message naming each field and reason."""
        message = "; ".join(f"{v.field}: {v.description}" for v in violations)
        return cls(message, violations=violations)


class FailedPrecondition(AutoloaderError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Unauthenticated(AutoloaderError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(AutoloaderError):
    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(AutoloaderError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(AutoloaderError):
    code = grpc.StatusCode.ALREADY_EXISTS


class Aborted(AutoloaderError):
    code = grpc.StatusCode.ABORTED


class LeaseLost(Aborted):
    """Another executor holds the run now (its lease epoch is newer): stop and publish nothing."""


class ResourceExhausted(AutoloaderError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(AutoloaderError):
    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(AutoloaderError):
    """Work the call waited for did not finish in time (its message says what was waited for)."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


HTTP_STATUS_BY_GRPC_CODE: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}

GENERIC_INTERNAL_MESSAGE = "internal error; see the service log for details"


def http_status_for(code: grpc.StatusCode) -> int:
    return HTTP_STATUS_BY_GRPC_CODE.get(code, 500)
