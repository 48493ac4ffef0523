"""TLS of the clients: the CA that signs the services' certificates and, for mutual TLS, a client certificate.

The files are read and checked once, when the options are made, so a wrong path fails before any call.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from autoloader.client.errors import TlsConfigError

_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY = b"PRIVATE KEY-----"

CA_VARIABLE = "AUTOLOADER_TLS_CA_FILE"
CERT_VARIABLE = "AUTOLOADER_TLS_CERT_FILE"
KEY_VARIABLE = "AUTOLOADER_TLS_KEY_FILE"


def _read_pem(variable: str, path: Path, marker: bytes, what: str) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise TlsConfigError(f"{variable}: cannot read {path}: {error.strerror or error}") from None
    if marker not in content:
        raise TlsConfigError(f"{variable}: {path} holds no PEM {what}")
    return content


@dataclass(frozen=True)
class TlsOptions:
    """No CA: plaintext. A CA: TLS, trusting only that bundle. A certificate and key: also presented to
    services that require client certificates. Make it with `TlsOptions.load(...)`."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    ca: bytes | None = None
    certificate: bytes | None = None
    private_key: bytes | None = None

    @classmethod
    def load(
        cls, ca_file: str | Path | None = None, cert_file: str | Path | None = None, key_file: str | Path | None = None
    ) -> TlsOptions:
        """Read and check the PEM files; the error names the AUTOLOADER_TLS_* variable of a bad one."""
        ca_path = Path(ca_file).expanduser() if ca_file else None
        cert_path = Path(cert_file).expanduser() if cert_file else None
        key_path = Path(key_file).expanduser() if key_file else None
        if cert_path is not None and key_path is None:
            raise TlsConfigError(f"{KEY_VARIABLE} is not set, but {CERT_VARIABLE} is")
        if key_path is not None and cert_path is None:
            raise TlsConfigError(f"{CERT_VARIABLE} is not set, but {KEY_VARIABLE} is")
        return cls(
            ca_file=ca_path,
            cert_file=cert_path,
            key_file=key_path,
            certificate=_read_pem(CERT_VARIABLE, cert_path, _CERTIFICATE, "certificate") if cert_path else None,
            private_key=_read_pem(KEY_VARIABLE, key_path, _PRIVATE_KEY, "private key") if key_path else None,
            ca=_read_pem(CA_VARIABLE, ca_path, _CERTIFICATE, "CA certificate") if ca_path else None,
        )

    @property
    def enabled(self) -> bool:
        return self.ca is not None

    def grpc_channel(self, address: str, options: list[tuple[str, Any]] | None = None) -> grpc.Channel:
        """A blocking channel to address: TLS with a CA, plaintext without."""
        if self.ca is None:
            return grpc.insecure_channel(address, options=options)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.private_key, certificate_chain=self.certificate
        )
        return grpc.secure_channel(address, credentials, options=options)

    def ssl_context(self) -> ssl.SSLContext | None:
        """For HTTPS (httpx `verify=`); None without a CA: the system's trust store then applies."""
        if self.ca_file is None:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return context
