"""TLS from the AUTOLOADER_TLS_* settings: gRPC server and channel credentials, and the gateway's HTTPS options.

Without any of them every process speaks plaintext, as the local trial stack does on loopback.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from services.shared.config import CommonSettings

ChannelFactory = Callable[[str], grpc.aio.Channel]

_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = b"PRIVATE KEY-----"


class TlsConfigError(Exception):
    """TLS settings that cannot work together; the message names the AUTOLOADER_* variable to fix."""


def _variable(field: str) -> str:
    return f"AUTOLOADER_{field.upper()}"


def _read_pem(field: str, path: Path, marker: bytes, what: str) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise TlsConfigError(f"{_variable(field)}: cannot read {path}: {error.strerror or error}") from None
    if marker not in content:
        raise TlsConfigError(f"{_variable(field)}: {path} holds no PEM {what}")
    return content


@dataclass(frozen=True)
class TlsMaterial:
    """The PEM files of the settings, read and checked once at start."""

    certificate: bytes | None = None
    private_key: bytes | None = None
    ca: bytes | None = None
    client_auth: bool = False
    # The paths again, for uvicorn, which wants files rather than bytes.
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, settings: CommonSettings) -> TlsMaterial:
        cert_file, key_file, ca_file = settings.tls_cert_file, settings.tls_key_file, settings.tls_ca_file
        if cert_file is not None and key_file is None:
            raise TlsConfigError(f"{_variable('tls_key_file')} is not set, but {_variable('tls_cert_file')} is")
        if key_file is not None and cert_file is None:
            raise TlsConfigError(f"{_variable('tls_cert_file')} is not set, but {_variable('tls_key_file')} is")
        if settings.tls_client_auth and ca_file is None:
            raise TlsConfigError(
                f"{_variable('tls_ca_file')} is not set, but {_variable('tls_client_auth')} is: client"
                " certificates are checked against that CA"
            )
        return cls(
            certificate=_read_pem("tls_cert_file", cert_file, _CERTIFICATE, "certificate") if cert_file else None,
            private_key=_read_pem("tls_key_file", key_file, _PRIVATE_KEY, "private key") if key_file else None,
            ca=_read_pem("tls_ca_file", ca_file, _CERTIFICATE, "CA certificate") if ca_file else None,
            client_auth=settings.tls_client_auth,
            cert_file=cert_file,
            key_file=key_file,
            ca_file=ca_file,
        )

    @property
    def serves_tls(self) -> bool:
        return self.certificate is not None

    @property
    def calls_tls(self) -> bool:
        return self.ca is not None

    def _check_serving(self) -> None:
        if self.client_auth and not self.serves_tls:
            raise TlsConfigError(
                f"{_variable('tls_client_auth')} needs {_variable('tls_cert_file')} and {_variable('tls_key_file')}:"
                " client certificates can only be required over TLS"
            )

    def server_credentials(self) -> grpc.ServerCredentials | None:
        """Credentials for add_secure_port, or None to serve plaintext."""
        self._check_serving()
        if self.certificate is None or self.private_key is None:
            return None
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate)],
            root_certificates=self.ca if self.client_auth else None,
            require_client_auth=self.client_auth,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        """Credentials to call other services (presenting this process's certificate, if any), or None."""
        if self.ca is None:
            return None
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.private_key, certificate_chain=self.certificate
        )

    def open_channel(self, address: str) -> grpc.aio.Channel:
        credentials = self.channel_credentials()
        if credentials is None:
            return grpc.aio.insecure_channel(address)
        return grpc.aio.secure_channel(address, credentials)

    def open_sync_channel(self, address: str, options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
        """The blocking channel of the CLI and the container health check."""
        credentials = self.channel_credentials()
        if credentials is None:
            return grpc.insecure_channel(address, options=options)
        return grpc.secure_channel(address, credentials, options=options)

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """An ssl context for HTTPS clients (httpx verify=, urllib context=), or None without a CA."""
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context

    def uvicorn_options(self) -> dict[str, Any]:
        """Keyword arguments of uvicorn.Config that turn on HTTPS (and client certificates); {} for plain HTTP."""
        self._check_serving()
        if self.cert_file is None or self.key_file is None:
            return {}
        options: dict[str, Any] = {"ssl_certfile": str(self.cert_file), "ssl_keyfile": str(self.key_file)}
        if self.client_auth:
            options |= {"ssl_ca_certs": str(self.ca_file), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return options


def server_credentials(settings: CommonSettings) -> grpc.ServerCredentials | None:
    """gRPC server credentials from the settings; None when no certificate is configured."""
    return TlsMaterial.from_settings(settings).server_credentials()


def open_channel(address: str, settings: CommonSettings) -> grpc.aio.Channel:
    """A channel to another service: TLS when AUTOLOADER_TLS_CA_FILE is set, plaintext otherwise."""
    return TlsMaterial.from_settings(settings).open_channel(address)


def channel_factory(settings: CommonSettings) -> ChannelFactory:
    """open_channel with the files read once, for a process that opens several channels (the gateway)."""
    return TlsMaterial.from_settings(settings).open_channel


def uvicorn_ssl_options(settings: CommonSettings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for the gateway's HTTPS; {} without a certificate."""
    return TlsMaterial.from_settings(settings).uvicorn_options()
