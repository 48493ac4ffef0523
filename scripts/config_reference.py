"""Generate docs/configuration.md, the reference of every AUTOLOADER_* variable, from the settings classes in
services/shared/config.py and the CLI's own variables (autoloader/cli/settings_catalog.py).

    .venv/bin/python scripts/config_reference.py           # rewrite docs/configuration.md
    .venv/bin/python scripts/config_reference.py --check   # exit 1 if it is out of date

The field descriptions are the source of each variable's meaning; the few facts that are not about one field
(what `autoloader up` does with a variable, where a setting is checked) are the hand-written NOTES below.
"""

from __future__ import annotations

import argparse
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import annotated_types
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from autoloader.cli.settings_catalog import CLI_VARIABLES, PROCESS_SETTINGS, is_secret, variable_name
from services.shared.config import (
    CommonSettings,
    ControlSettings,
    ExecutorSettings,
    GatewaySettings,
    ServiceSettings,
    TrackerSettings,
)

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration.md"
REGENERATE = ".venv/bin/python scripts/config_reference.py"
CLI = "CLI"

# One section per settings class; a variable is listed once, under the first class that declares it.
SECTIONS: tuple[tuple[type[BaseSettings], str], ...] = (
    (CommonSettings, "Every process"),
    (ServiceSettings, "The gRPC services: control, tracker, executor"),
    (ControlSettings, "Control"),
    (TrackerSettings, "Tracker"),
    (ExecutorSettings, "Executor"),
    (GatewaySettings, "Gateway"),
)

# What an empty or absent default stands for, where the field's own default does not say it.
DEFAULT_MEANINGS: dict[str, str] = {
    "home": "`~/.autoloader`",  # a default_factory: its value depends on who runs the generator
    "grpc_port": "a free port",
    "metrics_port": "a free port",
    "warehouse": "`$AUTOLOADER_HOME/warehouse`",
    "jar_cache": "`~/.cache/autoloader/jars`",
    "secret_keys": "a key kept in `$AUTOLOADER_HOME/secret-keys`",
    "rest_catalog_uri": "the JDBC catalog on the database",
    "endpoint_allowlist": "none; `autoloader up` allows loopback unless it is set",
}

# Facts about a variable beyond its field description.
NOTES: dict[str, str] = {
    "database_url": "The Iceberg JDBC catalog lives in the same database (schema `iceberg`).",
    "port_file": "`autoloader up` sets it for each process it starts.",
    "tls_cert_file": "See the [TLS section of the README](../README.md#tls).",
    "tls_client_auth": "See the [TLS section of the README](../README.md#tls).",
    "webhook_allowlist": "Used by control (on save) and the tracker (on delivery).",
    "endpoint_allowlist": "Checked when an ingestion is saved (control) and again before every connection"
    " (executor). `autoloader up` sets `127.0.0.0/8,[::1]` unless the variable is set.",
    "local_source_roots": "Checked when an ingestion is saved (control) and before reading, links followed (executor).",
    "secret_keys": "Used by control and the tracker; the default key file is created (mode 0600) on first start.",
    "token": "The tracker and executor accept no other kind of token; control also queues scheduled runs with it.",
    "spark_master": "See [cluster.md](cluster.md).",
    "poll_seconds": "A queued run or preview wakes an idle executor at once (it waits in the tracker's"
    " `WaitForWork`, which claims nothing); the poll still takes over runs whose lease ran out.",
}

# Variables outside the settings objects, read directly where they are used.
OTHER_VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "AUTOLOADER_FAILPOINTS",
        "executor",
        "For tests: comma-separated `<point>` or `<point>=stop`; the executor kills (or freezes) itself at that"
        " point of a run. See the README's *Failure handling*.",
    ),
)


@dataclass(frozen=True)
class Reading:
    """How one process reads one variable."""

    reader: str
    kind: str
    default: str
    meaning: str
    secret: bool


def readings() -> dict[str, list[Reading]]:
    """Every variable (by field name) with the processes that read it, processes in PROCESS_SETTINGS order."""
    found: dict[str, list[Reading]] = {}
    for process, settings_type in PROCESS_SETTINGS.items():
        for name, field in settings_type.model_fields.items():
            reading = Reading(process, kind(field), default_text(name, field), meaning(field), is_secret(field))
            found.setdefault(name, []).append(reading)
    for variable in CLI_VARIABLES:
        reading = Reading(CLI, variable.kind, variable.default, _sentence(variable.meaning), variable.secret)
        found.setdefault(variable.field, []).append(reading)
    return found


def kind(field: FieldInfo) -> str:
    base = _without_none(field.annotation)
    if get_origin(base) is dict:
        return "JSON object of strings"
    names = {SecretStr: "string", str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}
    if base not in names:
        raise TypeError(f"no type name for {base!r}: add it to kind() in {Path(__file__).name}")
    return names[base] + _bounds(field)


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [m for m in get_args(annotation) if m is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _bounds(field: FieldInfo) -> str:
    bounds: dict[str, Any] = {}
    for item in field.metadata:
        for attribute in ("ge", "gt", "le", "lt"):
            if isinstance(item, getattr(annotated_types, attribute.capitalize())):
                bounds[attribute] = getattr(item, attribute)
    if "ge" in bounds and "le" in bounds:
        return f" from {bounds['ge']} to {bounds['le']}"
    symbols = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    return "".join(f" {symbols[a]} {v}" for a, v in bounds.items())


def default_text(name: str, field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    meaning = DEFAULT_MEANINGS.get(name)
    if field.default_factory is not None and field.default_factory is not dict:
        if meaning is None:
            raise ValueError(f"{name}: a computed default needs an entry in DEFAULT_MEANINGS")
        return meaning
    literal = _literal(field.get_default(call_default_factory=True))
    return f"{literal} ({meaning})" if meaning else literal


def _literal(value: Any) -> str:
    if value is None:
        return "none"
    if value == "":
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def meaning(field: FieldInfo) -> str:
    if not field.description:
        raise ValueError("every settings field needs a description")
    return _sentence(field.description)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith(".") else text + "."


def render() -> str:
    variables = readings()
    listed: set[str] = set()
    parts = [_INTRODUCTION]
    for settings_type, title in SECTIONS:
        names = [n for n in settings_type.model_fields if n not in listed]
        listed.update(names)
        parts.append(f"## {title}\n\n{_table([(n, variables[n]) for n in names])}")
    unlisted = [n for n in variables if n not in listed]  # variables only the CLI reads
    if unlisted:
        parts.append(f"## CLI\n\n{_table([(n, variables[n]) for n in unlisted])}")
    rows = "\n".join(f"| `{name}` | {reader} | {text} |" for name, reader, text in OTHER_VARIABLES)
    parts.append(f"## Outside the settings objects\n\n| Variable | Read by | Meaning |\n|---|---|---|\n{rows}")
    return "\n\n".join(parts) + "\n"


def _table(rows: list[tuple[str, list[Reading]]]) -> str:
    lines = ["| Variable | Read by | Type | Default | Meaning |", "|---|---|---|---|---|"]
    for name, found in rows:
        readers = ", ".join(r.reader for r in found)
        kinds = _per_reader(found, lambda r: r.kind + (", **secret**" if r.secret else ""))
        meanings = _per_reader(found, lambda r: r.meaning)
        if name in NOTES:
            meanings += "<br>" + NOTES[name]
        cells = [f"`{variable_name(name)}`", readers, kinds, _per_reader(found, lambda r: r.default), meanings]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _per_reader(found: list[Reading], value_of: Callable[[Reading], str]) -> str:
    """One value when every reader agrees, else each distinct value with the readers it holds for."""
    groups: dict[str, list[str]] = {}
    for reading in found:
        groups.setdefault(value_of(reading), []).append(reading.reader)
    if len(groups) == 1:
        return next(iter(groups))
    return "<br>".join(f"{', '.join(readers)}: {value}" for value, readers in groups.items())


_INTRODUCTION = f"""\
# Configuration reference

<!-- Generated by scripts/config_reference.py from services/shared/config.py: do not edit.
     Regenerate with `{REGENERATE}`. -->

Every process reads its settings from `AUTOLOADER_*` environment variables once, at start. A missing
required variable or a bad value ends the process at once with a message naming the variable.
`autoloader config print [--service control|tracker|executor|gateway]` shows the configuration a process would
start with in the current environment, where each value comes from, and any problem, with secrets masked.

*Read by* names the processes that read a variable: the services `control`, `tracker`, `executor`, the
REST `gateway`, and the `CLI` (its commands, and `autoloader up`, which starts the whole stack on one
machine). Where a variable means something different to different processes, each meaning is given with
the processes it holds for. `autoloader config print` masks the values of variables marked **secret**, and
the password inside any URL."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/configuration.md is out of date")
    check = parser.parse_args(argv).check
    text = render()
    if check:
        if not OUTPUT.exists() or OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(ROOT)} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
