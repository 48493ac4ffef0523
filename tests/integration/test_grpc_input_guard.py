"""Requests that reach the control service over gRPC directly (not through the gateway's JSON checks)."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from autoloader.control.v1 import control_pb2 as pb
from autoloader.control.v1 import control_pb2_grpc as pb_grpc
from services.shared.interceptors import STATUS_DETAILS_KEY
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


def violated_fields(error: grpc.aio.AioRpcError) -> dict[str, str]:
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY:
            status = status_pb2.Status.FromString(value)
            bad_request = error_details_pb2.BadRequest()
            assert status.details[0].Unpack(bad_request)
            return {v.field: v.description for v in bad_request.field_violations}
    return {}


async def test_a_nul_anywhere_in_a_grpc_request_is_refused_naming_the_field(stack: InProcessStack) -> None:
    request = pb.CreateIngestionRequest(
        ingestion=pb.Ingestion(
            ingestion_id="nul-guard",
            name="fine",
            source=pb.Source(uri="file:///tmp/x/", format="csv", options={"sep": "\x00"}),
            destination=pb.Destination(table="raw.nul_guard"),
        )
    )
    metadata = (("authorization", f"Bearer {stack.admin_token}"),)
    async with grpc.aio.insecure_channel(stack.control.address) as channel:
        control = pb_grpc.ControlServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await control.CreateIngestion(request, metadata=metadata, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await control.GetIngestion(pb.GetIngestionRequest(ingestion_id="nul-guard"), metadata=metadata, timeout=10)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(refused.value) == {"ingestion.source.options.sep": "must not contain NUL characters"}
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND, "nothing may be stored"
