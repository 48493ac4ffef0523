"""The `autoloader` command: start the stack, manage tokens, ingestions and runs, query tables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from autoloader.cli import ingestions, operations, runs, tokens
from autoloader.cli.config import app as config_app
from autoloader.cli.connection import home

app = typer.Typer(help="Incremental, exactly-once ingestion of files into Apache Iceberg tables.", no_args_is_help=True)
app.add_typer(tokens.app, name="token")
app.add_typer(ingestions.app, name="ingestions")
app.add_typer(config_app, name="config")
app.command("run")(runs.run)
app.command("runs")(runs.runs)
app.command("files")(runs.files)
app.command("clear-processed-files")(runs.clear_processed_files)
app.command("sql")(runs.sql)
app.command("preview")(operations.preview)
app.command("cancel")(operations.cancel)
app.command("ticks")(operations.ticks)
app.command("deliveries")(operations.deliveries)
app.command("audit")(operations.audit)


@app.command()
def up(
    http_port: Annotated[int, typer.Option(help="Port of the HTTP API on 127.0.0.1")] = 8080,
    home_dir: Annotated[
        Path | None, typer.Option("--home", help="State directory (default $AUTOLOADER_HOME or ~/.autoloader)")
    ] = None,
) -> None:
    """Start PostgreSQL (embedded unless AUTOLOADER_DATABASE_URL is set), the services and the HTTP gateway."""
    from autoloader.stack.launcher import run

    raise typer.Exit(run(home_dir or home(), http_port, os.environ.get("AUTOLOADER_DATABASE_URL")))


def main() -> None:
    app()
