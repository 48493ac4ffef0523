"""Errors as HTTP responses: google.rpc.Status-shaped JSON bodies, statuses as in DESIGN §4."""

from __future__ import annotations

import grpc
from google.rpc import status_pb2
from starlette.responses import JSONResponse

from gateway.transcode import message_to_json
from services.shared.errors import GENERIC_INTERNAL_MESSAGE, AutoloaderError, http_status_for
from services.shared.interceptors import STATUS_DETAILS_KEY, status_proto


def _response(status: status_pb2.Status, grpc_code: grpc.StatusCode) -> JSONResponse:
    http_status = http_status_for(grpc_code)
    body = message_to_json(status)
    headers = {"WWW-Authenticate": "Bearer"} if http_status == 401 else None
    return JSONResponse(body, status_code=http_status, headers=headers)


def from_error(error: AutoloaderError) -> JSONResponse:
    return _response(status_proto(error), error.code)


def from_rpc_error(error: grpc.aio.AioRpcError) -> JSONResponse:
    """Carry the service's status (and its field violations) through; hide internals."""
    code = error.code()
    status = status_pb2.Status(code=code.value[0], message=error.details() or "")
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
    if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS):
        status = status_pb2.Status(code=grpc.StatusCode.INTERNAL.value[0], message=GENERIC_INTERNAL_MESSAGE)
    elif code == grpc.StatusCode.UNAVAILABLE:
        status = status_pb2.Status(code=code.value[0], message="a backend service is unavailable; retry later")
    return _response(status, code)
