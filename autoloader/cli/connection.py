"""Where the CLI finds the stack and its token."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from services.shared.config import CommonSettings, default_home, load_settings
from services.shared.tls import TlsConfigError, TlsMaterial


class CliError(Exception):
    """A problem to print for the user, without a traceback."""


def home() -> Path:
    return Path(os.environ.get("AUTOLOADER_HOME") or default_home()).expanduser()


@dataclass(frozen=True)
class Connection:
    addresses: dict[str, str]
    token: str
    # TLS to the services (and the gateway) when AUTOLOADER_TLS_CA_FILE is set; plaintext otherwise.
    tls: TlsMaterial = field(default_factory=TlsMaterial)

    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")]

    def channel(self, service: str = "control") -> grpc.Channel:
        address = self.addresses.get(service)
        if not address:
            raise CliError(f"no {service} address: set AUTOLOADER_{service.upper()}_ADDRESS or run `autoloader up`")
        return self.tls.open_sync_channel(address)


def _tls() -> TlsMaterial:
    """AUTOLOADER_TLS_CA_FILE verifies the services; AUTOLOADER_TLS_CERT_FILE and _KEY_FILE are the client
    certificate that services with AUTOLOADER_TLS_CLIENT_AUTH require."""
    try:
        return TlsMaterial.from_settings(load_settings(CommonSettings))
    except TlsConfigError as error:
        raise CliError(f"configuration error: {error}") from None


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
    return Connection(addresses=addresses, token=token, tls=_tls())
