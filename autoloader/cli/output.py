"""Printing results and turning errors into one readable line (plus field violations) and an exit code."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

import typer
from google.protobuf import json_format
from google.protobuf.message import Message

from autoloader.cli.connection import CliError, connect
from autoloader.client import AutoloaderClient, AutoloaderError, ConfigurationError

T = TypeVar("T")


def print_json(message: Message) -> None:
    value = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def error_text(error: AutoloaderError) -> str:
    if not error.violations:
        return f"error ({error.code.name}): {error.message}"
    lines = [f"error ({error.code.name}): invalid request"]
    lines += [f"  {v.field}: {v.description}" for v in error.violations]
    return "\n".join(lines)


def call(fn: Callable[[AutoloaderClient], T]) -> T:
    """Run fn with a client of the stack; print errors for people (no traceback) and exit 1."""
    try:
        with connect().client() as client:
            return fn(client)
    except (CliError, ConfigurationError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    except AutoloaderError as error:
        typer.echo(error_text(error), err=True)
        raise typer.Exit(1) from error
