"""Which process reads which AUTOLOADER_* variable: the settings class each process builds, plus the variables
the CLI reads to find the stack and `autoloader up` reads to start one. Shared by `autoloader config print` and
the generator of docs/configuration.md (scripts/config_reference.py), so both describe the same processes."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from services.shared.config import ControlSettings, ExecutorSettings, GatewaySettings, TrackerSettings

PREFIX = "AUTOLOADER_"

# The settings class each process builds at start (services/*/__main__.py, gateway/__main__.py).
PROCESS_SETTINGS: dict[str, type[BaseSettings]] = {
    "control": ControlSettings,
    "tracker": TrackerSettings,
    "executor": ExecutorSettings,
    "gateway": GatewaySettings,
}


@dataclass(frozen=True)
class CliVariable:
    """A variable the CLI reads, with what it means there. The CLI has no settings class of its own (it reads
    these where it uses them), so they are described by hand."""

    field: str
    kind: str
    default: str
    meaning: str
    secret: bool = False


FROM_STACK = "the stack `autoloader up` started (`$AUTOLOADER_HOME/stack.json`)"
CLI_VARIABLES: tuple[CliVariable, ...] = (
    CliVariable(
        "home",
        "path",
        "`~/.autoloader`",
        "Where the CLI finds the stack `autoloader up` started and its admin token; `autoloader up` keeps its"
        " embedded database, admin token and logs there",
    ),
    CliVariable(
        "database_url",
        "string",
        "an embedded PostgreSQL",
        "`autoloader up`: an existing PostgreSQL to use; it then starts no database",
        secret=True,
    ),
    CliVariable("control_address", "string", FROM_STACK, "host:port of the control service the CLI calls"),
    CliVariable("executor_address", "string", FROM_STACK, "host:port of the executor `autoloader sql` calls"),
    CliVariable(
        "http_url",
        "string",
        FROM_STACK,
        "Base URL of the HTTP API that the SDK's AutoloaderHttpClient.from_environment() calls",
    ),
    CliVariable(
        "token",
        "string",
        "the contents of `$AUTOLOADER_HOME/admin-token`",
        "API token the CLI sends",
        secret=True,
    ),
    CliVariable("tls_ca_file", "path", "none", "PEM CA bundle: the CLI calls the services over TLS, trusting only it"),
    CliVariable(
        "tls_cert_file",
        "path",
        "none",
        "PEM client certificate the CLI presents to services that require one (mutual TLS)",
    ),
    CliVariable("tls_key_file", "path", "none", "PEM private key of the CLI's client certificate"),
)


def variable_name(field: str) -> str:
    return PREFIX + field.upper()


def is_secret(field: FieldInfo) -> bool:
    """SecretStr, alone or in a union such as `SecretStr | None`."""
    return _mentions(field.annotation, SecretStr)


def _mentions(annotation: Any, wanted: type) -> bool:
    if annotation is wanted:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_mentions(member, wanted) for member in get_args(annotation))
    return False
