"""`autoloader config print`: the configuration a process would start with here, secrets masked."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer

from autoloader.cli.effective_settings import MISSING, EffectiveSetting, effective_settings
from autoloader.cli.settings_catalog import PROCESS_SETTINGS

app = typer.Typer(help="Show the configuration the processes would start with.", no_args_is_help=True)


class Service(StrEnum):
    CONTROL = "control"
    TRACKER = "tracker"
    EXECUTOR = "executor"
    GATEWAY = "gateway"
    ALL = "all"


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command("print")
def print_config(
    service: Annotated[Service, typer.Option(help="The process whose settings to show")] = Service.ALL,
    output_format: Annotated[OutputFormat, typer.Option("--format", help="text or json")] = OutputFormat.TEXT,
) -> None:
    """Show every AUTOLOADER_* setting the process would start with in this environment and where it came from
    (default, environment, or missing), secrets masked. Exits 1 when the process would refuse to start."""
    processes = list(PROCESS_SETTINGS) if service is Service.ALL else [service.value]
    shown = {process: effective_settings(PROCESS_SETTINGS[process]) for process in processes}
    if output_format is OutputFormat.JSON:
        typer.echo(json.dumps({p: [_as_json(s) for s in settings] for p, settings in shown.items()}, indent=2))
    else:
        typer.echo("\n\n".join(_as_text(p, settings) for p, settings in shown.items()))
    failed = False
    for process, settings in shown.items():
        problems = [f"{s.variable}: {s.problem}" for s in settings if s.problem]
        if problems:
            typer.echo(f"error: {process} would not start: " + "; ".join(problems), err=True)
            failed = True
    if failed:
        raise typer.Exit(1)


def _as_json(setting: EffectiveSetting) -> dict[str, Any]:
    return {
        "variable": setting.variable,
        "value": setting.value,
        "source": setting.source,
        "secret": setting.secret,
        "problem": setting.problem,
    }


def _as_text(process: str, settings: list[EffectiveSetting]) -> str:
    width = max(len(s.variable) for s in settings)
    lines = [f"[{process}]"]
    for setting in settings:
        value = "" if setting.source == MISSING else _text_value(setting.value)
        problem = f"({setting.problem})" if setting.problem else ""
        lines.append("  ".join(filter(None, (f"{setting.variable:<{width}}", f"{setting.source:<11}", value, problem))))
    return "\n".join(lines)


def _text_value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value)
