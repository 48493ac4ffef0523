"""Where the CLI finds the stack and its token: the SDK's discovery (AUTOLOADER_* variables, else the running
`autoloader up`), with its problems worded for the command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import grpc

from autoloader.client import AutoloaderClient, ConfigurationError, TlsConfigError, TlsOptions, environment


class CliError(Exception):
    """A problem to print for the user, without a traceback."""


def home() -> Path:
    return environment.home()


@dataclass(frozen=True)
class Connection:
    addresses: dict[str, str]
    token: str
    # TLS to the services when AUTOLOADER_TLS_CA_FILE is set; plaintext otherwise.
    tls: TlsOptions = field(default_factory=TlsOptions)

    def metadata(self) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.token}")]

    def channel(self, service: str = "control") -> grpc.Channel:
        try:
            address = environment.StackAddresses(self.addresses, "").require(service)
        except ConfigurationError as error:
            raise CliError(str(error)) from None
        return self.tls.grpc_channel(address)

    def client(self) -> AutoloaderClient:
        # No deadline of its own: a command waits as long as the service takes (previews and SQL excepted).
        return AutoloaderClient(
            self.addresses["control"],
            self.token,
            tls=self.tls,
            executor_address=self.addresses.get("executor", ""),
            timeout=None,
        )


def connect() -> Connection:
    """Service addresses from AUTOLOADER_<SERVICE>_ADDRESS or the running `autoloader up`; token from
    AUTOLOADER_TOKEN or $AUTOLOADER_HOME/admin-token; TLS from AUTOLOADER_TLS_CA_FILE (and _CERT_FILE and
    _KEY_FILE for services that require client certificates)."""
    try:
        addresses = environment.locate()
        addresses.control()
        token = environment.find_token()
        tls = environment.tls_from_environment()
    except TlsConfigError as error:
        raise CliError(f"configuration error: {error}") from None
    except ConfigurationError as error:
        raise CliError(str(error)) from None
    return Connection(addresses=addresses.grpc, token=token, tls=tls)
