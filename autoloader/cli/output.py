"""Printing results and turning errors into one readable line (plus field violations) and an exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
import typer
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from autoloader.cli.connection import CliError, Connection, connect

T = TypeVar("T")


def print_json(message: Message) -> None:
    value = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def rpc_error_text(error: grpc.RpcError) -> str:
    call: Any = error  # a grpc.RpcError raised by a call is also a grpc.Call
    lines = [f"error ({call.code().name}): {call.details()}"]
    for key, value in call.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad_request = error_details_pb2.BadRequest()
                if detail.Unpack(bad_request):
                    lines = [f"error ({call.code().name}): invalid request"]
                    lines += [f"  {v.field}: {v.description}" for v in bad_request.field_violations]
    return "\n".join(lines)


def call(fn: Callable[[Connection], T]) -> T:
    """Run fn against the stack; print errors for people (no traceback) and exit 1."""
    try:
        return fn(connect())
    except CliError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    except grpc.RpcError as error:
        typer.echo(rpc_error_text(error), err=True)
        raise typer.Exit(1) from error
