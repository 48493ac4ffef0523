"""The SDK's exceptions: each gRPC status and each HTTP error body maps to its class, with field violations."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import any_pb2, json_format
from google.rpc import error_details_pb2, status_pb2

from autoloader import client
from autoloader.client.errors import STATUS_DETAILS_KEY, from_http_error, from_rpc_error


class FakeRpcError(grpc.RpcError):
    """What a failed blocking call raises: an RpcError that is also a grpc.Call."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple[tuple[str, bytes], ...] = ()) -> None:
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailers


def bad_request_status(*violations: tuple[str, str]) -> status_pb2.Status:
    status = status_pb2.Status(code=grpc.StatusCode.INVALID_ARGUMENT.value[0], message="invalid ingestion")
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
                for field, description in violations
            ]
        )
    )
    status.details.append(detail)
    return status


CLASSES = [
    (grpc.StatusCode.INVALID_ARGUMENT, client.InvalidArgument, 400),
    (grpc.StatusCode.FAILED_PRECONDITION, client.FailedPrecondition, 400),
    (grpc.StatusCode.UNAUTHENTICATED, client.Unauthenticated, 401),
    (grpc.StatusCode.PERMISSION_DENIED, client.PermissionDenied, 403),
    (grpc.StatusCode.NOT_FOUND, client.NotFound, 404),
    (grpc.StatusCode.ALREADY_EXISTS, client.AlreadyExists, 409),
    (grpc.StatusCode.ABORTED, client.Aborted, 409),
    (grpc.StatusCode.RESOURCE_EXHAUSTED, client.ResourceExhausted, 429),
    (grpc.StatusCode.UNAVAILABLE, client.Unavailable, 503),
    (grpc.StatusCode.DEADLINE_EXCEEDED, client.DeadlineExceeded, 504),
    (grpc.StatusCode.INTERNAL, client.InternalError, 500),
]


@pytest.mark.parametrize(("code", "error_type", "http_status"), CLASSES)
def test_a_grpc_status_becomes_its_exception(
    code: grpc.StatusCode, error_type: type[client.AutoloaderError], http_status: int
) -> None:
    error = from_rpc_error(FakeRpcError(code, "what happened"))
    assert type(error) is error_type
    assert isinstance(error, client.AutoloaderError)
    assert (error.code, error.message, error.violations) == (code, "what happened", ())


@pytest.mark.parametrize(("code", "error_type", "http_status"), CLASSES)
def test_an_http_error_body_becomes_the_same_exception(
    code: grpc.StatusCode, error_type: type[client.AutoloaderError], http_status: int
) -> None:
    body = f'{{"code": {code.value[0]}, "message": "what happened", "details": []}}'.encode()
    error = from_http_error(http_status, body)
    assert type(error) is error_type
    assert (error.code, error.message, error.http_status) == (code, "what happened", http_status)


def test_both_conflicts_are_one_family() -> None:
    assert issubclass(client.AlreadyExists, client.Conflict)
    assert issubclass(client.Aborted, client.Conflict)


def test_field_violations_are_decoded_from_the_grpc_status_details() -> None:
    status = bad_request_status(("source.uri", "is required"), ("destination.table", "must be db.table"))
    error = from_rpc_error(
        FakeRpcError(grpc.StatusCode.INVALID_ARGUMENT, "invalid", ((STATUS_DETAILS_KEY, status.SerializeToString()),))
    )
    assert isinstance(error, client.InvalidArgument)
    assert error.violations == (
        client.FieldViolation("source.uri", "is required"),
        client.FieldViolation("destination.table", "must be db.table"),
    )


def test_field_violations_are_decoded_from_the_http_body_the_gateway_writes() -> None:
    # The gateway writes the same google.rpc.Status as JSON with proto field names.
    status = bad_request_status(("source.format", "must be one of csv, json"))
    body = json_format.MessageToJson(status, preserving_proto_field_name=True).encode()
    error = from_http_error(400, body)
    assert isinstance(error, client.InvalidArgument)
    assert error.violations == (client.FieldViolation("source.format", "must be one of csv, json"),)


def test_unknown_codes_keep_their_code_on_the_base_class() -> None:
    error = from_rpc_error(FakeRpcError(grpc.StatusCode.UNIMPLEMENTED, "no such method"))
    assert type(error) is client.AutoloaderError
    assert error.code == grpc.StatusCode.UNIMPLEMENTED


def test_an_http_error_without_a_status_body_maps_by_its_http_status() -> None:
    error = from_http_error(503, b"<html>bad gateway</html>")
    assert isinstance(error, client.Unavailable)
    assert error.message == "HTTP 503"
    teapot = from_http_error(418, b"")
    assert isinstance(teapot, client.InternalError)
    assert teapot.code == grpc.StatusCode.UNKNOWN


def test_rate_limiting_carries_retry_after() -> None:
    body = b'{"code": 8, "message": "too many requests", "details": []}'
    error = from_http_error(429, body, retry_after="3")
    assert isinstance(error, client.ResourceExhausted)
    assert error.retry_after == 3.0
