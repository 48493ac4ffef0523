"""`autoloader token ...`: create, list and revoke API tokens (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from autoloader.cli.connection import Connection
from autoloader.cli.output import call
from autoloader.control.v1 import control_pb2 as pb
from autoloader.control.v1 import control_pb2_grpc as pb_grpc

app = typer.Typer(help="Create, list and revoke API tokens (admin).", no_args_is_help=True)
ROLES = {"viewer": pb.ROLE_VIEWER, "runner": pb.ROLE_RUNNER, "editor": pb.ROLE_EDITOR, "admin": pb.ROLE_ADMIN}


def _stub(connection: Connection) -> pb_grpc.ControlServiceStub:
    return pb_grpc.ControlServiceStub(connection.channel())


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Principal name; owns what the token creates")],
    role: Annotated[str, typer.Option(help="admin, editor, runner or viewer")],
) -> None:
    """Create a token and print its secret (shown once)."""
    if role not in ROLES:
        typer.echo("error: --role must be admin, editor, runner or viewer", err=True)
        raise typer.Exit(2)
    response = call(
        lambda c: _stub(c).CreateToken(pb.CreateTokenRequest(name=name, role=ROLES[role]), metadata=c.metadata())
    )
    typer.echo(f"token_id: {response.token.token_id}")
    typer.echo(f"secret:   {response.secret}")
    typer.echo("The secret is shown only now; store it safely.", err=True)


@app.command("list")
def list_tokens(show_revoked: Annotated[bool, typer.Option("--all", help="Include revoked tokens")] = False) -> None:
    """List tokens (never their secrets)."""
    response = call(
        lambda c: _stub(c).ListTokens(pb.ListTokensRequest(show_revoked=show_revoked), metadata=c.metadata())
    )
    for token in response.tokens:
        revoked = " revoked" if token.HasField("revoke_time") else ""
        role = pb.Role.Name(token.role).removeprefix("ROLE_").lower()
        typer.echo(f"{token.token_id}  {role:<7} {token.name}{revoked}")


@app.command("revoke")
def revoke(token_id: str) -> None:
    """Revoke a token; it is refused from then on."""
    call(lambda c: _stub(c).RevokeToken(pb.RevokeTokenRequest(token_id=token_id), metadata=c.metadata()))
    typer.echo(f"revoked {token_id}")
