"""The `autoloader` command: start the stack, manage tokens and ingestions."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import grpc
import typer
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from autoloader.cli.connection import CliError, Connection, connect, home
from autoloader.control.v1 import control_pb2 as pb
from autoloader.control.v1 import control_pb2_grpc as pb_grpc

app = typer.Typer(help="Incremental, exactly-once ingestion of files into Apache Iceberg tables.", no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke API tokens (admin).", no_args_is_help=True)
ingestions_app = typer.Typer(help="Manage ingestion configurations.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(ingestions_app, name="ingestions")

T = TypeVar("T")
ROLES = {"viewer": pb.ROLE_VIEWER, "editor": pb.ROLE_EDITOR, "admin": pb.ROLE_ADMIN}


def _print_json(message: Any) -> None:
    value = json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _rpc_error_text(error: grpc.RpcError) -> str:
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


def _call(fn: Callable[[pb_grpc.ControlServiceStub, Connection], T]) -> T:
    try:
        connection = connect()
        with connection.channel() as channel:
            return fn(pb_grpc.ControlServiceStub(channel), connection)
    except CliError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    except grpc.RpcError as error:
        typer.echo(_rpc_error_text(error), err=True)
        raise typer.Exit(1) from error


@app.command()
def up(
    http_port: Annotated[int, typer.Option(help="Port of the HTTP API on 127.0.0.1")] = 8080,
    home_dir: Annotated[
        Path | None, typer.Option("--home", help="State directory (default $AUTOLOADER_HOME or ~/.autoloader)")
    ] = None,
) -> None:
    """Start PostgreSQL (embedded unless AUTOLOADER_DATABASE_URL is set), the services and the HTTP gateway."""
    import os

    from autoloader.stack.launcher import run

    raise typer.Exit(run(home_dir or home(), http_port, os.environ.get("AUTOLOADER_DATABASE_URL")))


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option(help="Principal name; owns what the token creates")],
    role: Annotated[str, typer.Option(help="admin, editor or viewer")],
) -> None:
    """Create a token and print its secret (shown once)."""
    if role not in ROLES:
        typer.echo("error: --role must be admin, editor or viewer", err=True)
        raise typer.Exit(2)
    response = _call(
        lambda stub, c: stub.CreateToken(pb.CreateTokenRequest(name=name, role=ROLES[role]), metadata=c.metadata())
    )
    typer.echo(f"token_id: {response.token.token_id}")
    typer.echo(f"secret:   {response.secret}")
    typer.echo("The secret is shown only now; store it safely.", err=True)


@token_app.command("list")
def token_list(show_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens")] = False) -> None:
    """List tokens (never their secrets)."""
    response = _call(
        lambda stub, c: stub.ListTokens(pb.ListTokensRequest(show_revoked=show_revoked), metadata=c.metadata())
    )
    for token in response.tokens:
        revoked = " revoked" if token.HasField("revoke_time") else ""
        role = pb.Role.Name(token.role).removeprefix("ROLE_").lower()
        typer.echo(f"{token.token_id}  {role:<7} {token.name}{revoked}")


@token_app.command("revoke")
def token_revoke(token_id: str) -> None:
    """Revoke a token; it is refused from then on."""
    _call(lambda stub, c: stub.RevokeToken(pb.RevokeTokenRequest(token_id=token_id), metadata=c.metadata()))
    typer.echo(f"revoked {token_id}")


def _read_config(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        typer.echo(f"error: {path} is not valid JSON: {error}", err=True)
        raise typer.Exit(2) from error
    if not isinstance(value, dict):
        typer.echo(f"error: {path} must hold a JSON object", err=True)
        raise typer.Exit(2)
    return value


@ingestions_app.command("create")
def ingestions_create(
    file: Annotated[
        str, typer.Option("--file", "-f", help="JSON configuration (same body as the HTTP API); - for stdin")
    ],
) -> None:
    """Create an ingestion from a JSON configuration."""
    ingestion = pb.Ingestion()
    try:
        json_format.ParseDict(_read_config(file), ingestion)
    except json_format.ParseError as error:
        typer.echo(f"error: {str(error).splitlines()[0]}", err=True)
        raise typer.Exit(2) from error
    response = _call(
        lambda stub, c: stub.CreateIngestion(pb.CreateIngestionRequest(ingestion=ingestion), metadata=c.metadata())
    )
    _print_json(response.ingestion)


@ingestions_app.command("list")
def ingestions_list() -> None:
    """List every ingestion."""

    def list_all(stub: pb_grpc.ControlServiceStub, c: Connection) -> list[pb.Ingestion]:
        found, token = [], ""
        while True:
            page = stub.ListIngestions(pb.ListIngestionsRequest(page_token=token), metadata=c.metadata())
            found += list(page.ingestions)
            token = page.next_page_token
            if not token:
                return found

    for ingestion in _call(list_all):
        state = "enabled" if ingestion.enabled else "paused"
        typer.echo(
            f"{ingestion.ingestion_id}  {ingestion.source.format:<7} {ingestion.source.uri} -> "
            f"{ingestion.destination.table}  ({state}, owner {ingestion.owner})"
        )


@ingestions_app.command("get")
def ingestions_get(ingestion_id: str) -> None:
    """Show one ingestion as JSON."""
    response = _call(
        lambda stub, c: stub.GetIngestion(pb.GetIngestionRequest(ingestion_id=ingestion_id), metadata=c.metadata())
    )
    _print_json(response.ingestion)


@ingestions_app.command("delete")
def ingestions_delete(ingestion_id: str) -> None:
    """Delete an ingestion's configuration (its table is not touched)."""
    response = _call(
        lambda stub, c: stub.DeleteIngestion(
            pb.DeleteIngestionRequest(ingestion_id=ingestion_id), metadata=c.metadata()
        )
    )
    typer.echo(response.message)


def main() -> None:
    app()
