"""Where the CLI finds the stack and its token."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from services.shared.config import default_home


class CliError(Exception):
    """A problem to print for the user, without a traceback."""


def home() -> Path:
    return Path(os.environ.get("AUTOLOADER_HOME") or default_home()).expanduser()


@dataclass(frozen=True)
class Connection:
    control_address: str
    token: str

    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")]

    def channel(self) -> grpc.Channel:
        return grpc.insecure_channel(self.control_address)


def _state() -> dict[str, str]:
    state_file = home() / "stack.json"
    if not state_file.exists():
        return {}
    state: dict[str, str] = json.loads(state_file.read_text())
    return state


def connect() -> Connection:
    """Control address from AUTOLOADER_CONTROL_ADDRESS or the running `autoloader up`;
    token from AUTOLOADER_TOKEN or $AUTOLOADER_HOME/admin-token."""
    address = os.environ.get("AUTOLOADER_CONTROL_ADDRESS") or _state().get("control_address")
    if not address:
        raise CliError("no running stack found: start one with `autoloader up` or set AUTOLOADER_CONTROL_ADDRESS")
    token = os.environ.get("AUTOLOADER_TOKEN")
    if not token:
        token_file = home() / "admin-token"
        if not token_file.exists():
            raise CliError(f"no token: set AUTOLOADER_TOKEN or create {token_file} (written by `autoloader up`)")
        token = token_file.read_text().strip()
    return Connection(control_address=address, token=token)
