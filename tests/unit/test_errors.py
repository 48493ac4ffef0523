from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from services.shared import errors
from services.shared.interceptors import status_proto


@pytest.mark.parametrize(
    ("error_type", "status"),
    [
        (errors.InvalidArgument, 400),
        (errors.FailedPrecondition, 400),
        (errors.Unauthenticated, 401),
        (errors.PermissionDenied, 403),
        (errors.NotFound, 404),
        (errors.AlreadyExists, 409),
        (errors.Aborted, 409),
        (errors.ResourceExhausted, 429),
        (errors.Unavailable, 503),
        (errors.AutoloaderError, 500),
    ],
)
def test_each_error_maps_to_its_http_status(error_type: type[errors.AutoloaderError], status: int) -> None:
    assert errors.http_status_for(error_type.code) == status


def test_unmapped_codes_are_500() -> None:
    assert errors.http_status_for(grpc.StatusCode.DATA_LOSS) == 500
    assert errors.http_status_for(grpc.StatusCode.OUT_OF_RANGE) == 400
    assert errors.http_status_for(grpc.StatusCode.DEADLINE_EXCEEDED) == 504


def test_status_carries_field_violations() -> None:
    error = errors.InvalidArgument.of([errors.FieldViolation("source.uri", "is required")])
    status = status_proto(error)
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert status.message == "source.uri: is required"
    detail = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(detail)
    assert [(v.field, v.description) for v in detail.field_violations] == [("source.uri", "is required")]
