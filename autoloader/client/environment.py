"""Where a client finds the services and its token: AUTOLOADER_* variables first, else the state of the
running `autoloader up` ($AUTOLOADER_HOME/stack.json and admin-token)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from autoloader.client.errors import ConfigurationError
from autoloader.client.tls import CA_VARIABLE, CERT_VARIABLE, KEY_VARIABLE, TlsOptions

SERVICES = ("control", "tracker", "executor")


def _environ(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def home(environ: Mapping[str, str] | None = None) -> Path:
    """AUTOLOADER_HOME, else ~/.autoloader: where `autoloader up` keeps its state."""
    return Path(_environ(environ).get("AUTOLOADER_HOME") or "~/.autoloader").expanduser()


@dataclass(frozen=True)
class StackAddresses:
    """gRPC addresses by service ("" when unknown) and the HTTP API's base URL."""

    grpc: dict[str, str]
    http_url: str

    def control(self) -> str:
        """The control service's address, which every gRPC client needs."""
        if not self.grpc.get("control"):
            raise ConfigurationError(
                "no running stack found: start one with `autoloader up` or set AUTOLOADER_CONTROL_ADDRESS"
            )
        return self.grpc["control"]

    def require(self, service: str) -> str:
        address = self.grpc.get(service, "")
        if not address:
            variable = f"AUTOLOADER_{service.upper()}_ADDRESS"
            raise ConfigurationError(f"no {service} address: set {variable} or run `autoloader up`")
        return address


def _stack_state(environ: Mapping[str, str] | None) -> dict[str, str]:
    state_file = home(environ) / "stack.json"
    if not state_file.exists():
        return {}
    state = json.loads(state_file.read_text())
    return {str(key): str(value) for key, value in state.items()} if isinstance(state, dict) else {}


def locate(environ: Mapping[str, str] | None = None) -> StackAddresses:
    """AUTOLOADER_<SERVICE>_ADDRESS and AUTOLOADER_HTTP_URL, else what the running `autoloader up` wrote."""
    env, state = _environ(environ), _stack_state(environ)
    return StackAddresses(
        grpc={
            service: env.get(f"AUTOLOADER_{service.upper()}_ADDRESS") or state.get(f"{service}_address", "")
            for service in SERVICES
        },
        http_url=env.get("AUTOLOADER_HTTP_URL") or state.get("http_url", ""),
    )


def find_token(environ: Mapping[str, str] | None = None) -> str:
    """AUTOLOADER_TOKEN, else the admin token `autoloader up` saved in $AUTOLOADER_HOME/admin-token."""
    token = _environ(environ).get("AUTOLOADER_TOKEN")
    if token:
        return token
    token_file = home(environ) / "admin-token"
    if not token_file.exists():
        raise ConfigurationError(f"no token: set AUTOLOADER_TOKEN or create {token_file} (written by `autoloader up`)")
    return token_file.read_text().strip()


def tls_from_environment(environ: Mapping[str, str] | None = None) -> TlsOptions:
    """AUTOLOADER_TLS_CA_FILE turns TLS on; AUTOLOADER_TLS_CERT_FILE and _KEY_FILE are the client certificate
    that services with AUTOLOADER_TLS_CLIENT_AUTH require."""
    env = _environ(environ)
    return TlsOptions.load(env.get(CA_VARIABLE), env.get(CERT_VARIABLE), env.get(KEY_VARIABLE))
