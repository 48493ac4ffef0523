"""`autoloader token ...`: create, list and revoke API tokens (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from autoloader.cli.output import call
from autoloader.client.messages import role_name
from autoloader.control.v1 import control_pb2 as pb

app = typer.Typer(help="Create, list and revoke API tokens (admin).", no_args_is_help=True)
ROLES = {"viewer": pb.ROLE_VIEWER, "runner": pb.ROLE_RUNNER, "editor": pb.ROLE_EDITOR, "admin": pb.ROLE_ADMIN}


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Principal name; owns what the token creates")],
    role: Annotated[str, typer.Option(help="admin, editor, runner or viewer")],
) -> None:
    """Create a token and print its secret (shown once)."""
    if role not in ROLES:
        typer.echo("error: --role must be admin, editor, runner or viewer", err=True)
        raise typer.Exit(2)
    response = call(lambda c: c.create_token(name, ROLES[role]))
    typer.echo(f"token_id: {response.token.token_id}")
    typer.echo(f"secret:   {response.secret}")
    typer.echo("The secret is shown only now; store it safely.", err=True)


@app.command("list")
def list_tokens(show_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens")] = False) -> None:
    """List tokens (never their secrets)."""
    for token in call(lambda c: list(c.list_tokens(show_revoked=show_revoked))):
        revoked = " revoked" if token.HasField("revoke_time") else ""
        typer.echo(f"{token.token_id}  {role_name(token.role):<7} {token.name}{revoked}")


@app.command("revoke")
def revoke(token_id: str) -> None:
    """Revoke a token; it is refused from then on."""
    call(lambda c: c.revoke_token(token_id))
    typer.echo(f"revoked {token_id}")
