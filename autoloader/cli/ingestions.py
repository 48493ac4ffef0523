"""`autoloader ingestions ...`: manage ingestion configurations."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from google.protobuf import json_format

from autoloader.cli.output import call, print_json
from autoloader.client.messages import role_name
from autoloader.control.v1 import control_pb2 as pb

app = typer.Typer(help="Manage ingestion configurations.", no_args_is_help=True)


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


@app.command("create")
def create(
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
    print_json(call(lambda c: c.create_ingestion(ingestion)))


@app.command("list")
def list_ingestions() -> None:
    """List every ingestion."""
    for ingestion in call(lambda c: list(c.list_ingestions())):
        state = "enabled" if ingestion.enabled else "paused"
        typer.echo(
            f"{ingestion.ingestion_id}  {ingestion.source.format:<7} {ingestion.source.uri} -> "
            f"{ingestion.destination.table}  ({state}, owner {ingestion.owner})"
        )


@app.command("get")
def get(ingestion_id: str) -> None:
    """Show one ingestion as JSON."""
    print_json(call(lambda c: c.get_ingestion(ingestion_id)))


@app.command("delete")
def delete(ingestion_id: str) -> None:
    """Delete an ingestion's configuration (its table is not touched)."""
    typer.echo(call(lambda c: c.delete_ingestion(ingestion_id)).message)


@app.command("schema")
def schema(ingestion_id: str) -> None:
    """Show the table's columns as the last run left them (or as configured, before any run)."""
    response = call(lambda c: c.get_schema(ingestion_id))
    if not response.columns:
        typer.echo("No columns yet: the first run that writes infers them.")
        return
    origin = "as the last run left the table" if response.origin == "table" else "as configured (no run wrote yet)"
    typer.echo(f"{ingestion_id} columns, {origin}:")
    width = max(len(column.name) for column in response.columns)
    for column in response.columns:
        typer.echo(f"  {column.name:<{width}}  {column.type}")


SHARE_ROLES = {"viewer": pb.ROLE_VIEWER, "runner": pb.ROLE_RUNNER, "editor": pb.ROLE_EDITOR}


@app.command("share")
def share(
    ingestion_id: str,
    principal: Annotated[str, typer.Option(help="Token name to share with")],
    role: Annotated[str, typer.Option(help="viewer, runner or editor")],
) -> None:
    """Give a principal a role on an ingestion (owner or admin); sharing again changes the role."""
    if role not in SHARE_ROLES:
        typer.echo("error: --role must be viewer, runner or editor", err=True)
        raise typer.Exit(2)
    granted = call(lambda c: c.share_ingestion(ingestion_id, principal, SHARE_ROLES[role]))
    typer.echo(f"{ingestion_id} shared with {granted.principal} as {role}")


@app.command("unshare")
def unshare(
    ingestion_id: str, principal: Annotated[str, typer.Option(help="Token name to take the share from")]
) -> None:
    """Take a principal's share of an ingestion away (owner or admin)."""
    typer.echo(call(lambda c: c.unshare_ingestion(ingestion_id, principal)).message)


@app.command("shares")
def shares(ingestion_id: str) -> None:
    """Who an ingestion is shared with, and at which role."""
    for entry in call(lambda c: list(c.list_shares(ingestion_id))):
        typer.echo(f"{entry.principal}  {role_name(entry.role)}")
