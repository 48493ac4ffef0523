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
    addresses: dict[str, str]
    token: str

    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")]

    def channel(self, service: str = "control") -> grpc.Channel:
        address = self.addresses.get(service)
        if not address:
            raise CliError(f"no {service} address: set AUTOLOADER_{service.upper()}_ADDRESS or run `autoloader up`")
        return grpc.insecure_channel(address)


def _state() -> dict[str, str]:
    state_file = home() / "stack.json"
    if not state_file.exists():
        return {}
    state: dict[str, str] = json.loads(state_file.read_text())
    return state


def connect() -> Connection:
    """Service addresses from AUTOLOADER_<SERVICE>_ADDRESS or the running `autoloader up`;
    token from AUTOLOADER_TOKEN or $AUTOLOADER_HOME/admin-token."""
    state = _state()
    addresses = {
        service: os.environ.get(f"AUTOLOADER_{service.upper()}_ADDRESS") or state.get(f"{service}_address", "")
        for service in ("control", "tracker", "executor")
    }
    if not addresses["control"]:
        raise CliError("no running stack found: start one with `autoloader up` or set AUTOLOADER_CONTROL_ADDRESS")
    token = os.environ.get("AUTOLOADER_TOKEN")
    if not token:
        token_file = home() / "admin-token"
        if not token_file.exists():
            raise CliError(f"no token: set AUTOLOADER_TOKEN or create {token_file} (written by `autoloader up`)")
        token = token_file.read_text().strip()
    return Connection(addresses=addresses, token=token)
