"""services/shared/tls.py: which settings turn TLS on, and the errors of settings that cannot work."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path

import grpc
import pytest

from services.shared import service_runtime
from services.shared.config import CommonSettings, TrackerSettings
from services.shared.tls import TlsConfigError, TlsMaterial, server_credentials, uvicorn_ssl_options
from tests.support.certs import CertFiles, CertificateAuthority


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def service(ca: CertificateAuthority) -> CertFiles:
    return ca.issue("service")


def settings(**values: object) -> CommonSettings:
    return CommonSettings.model_validate(values)


def config_error(values: dict[str, object]) -> str:
    with pytest.raises(TlsConfigError) as raised:
        TlsMaterial.from_settings(settings(**values)).server_credentials()
    return str(raised.value)


def test_nothing_configured_means_plaintext() -> None:
    tls = TlsMaterial.from_settings(settings())
    assert tls.server_credentials() is None
    assert tls.channel_credentials() is None
    assert tls.client_ssl_context() is None
    assert tls.uvicorn_options() == {}


def test_certificate_without_key_names_the_key_variable(service: CertFiles) -> None:
    message = config_error({"tls_cert_file": service.cert})
    assert message.startswith("AUTOLOADER_TLS_KEY_FILE is not set"), message


def test_key_without_certificate_names_the_certificate_variable(service: CertFiles) -> None:
    message = config_error({"tls_key_file": service.key})
    assert message.startswith("AUTOLOADER_TLS_CERT_FILE is not set"), message


def test_client_auth_without_ca_names_the_ca_variable(service: CertFiles) -> None:
    message = config_error({"tls_cert_file": service.cert, "tls_key_file": service.key, "tls_client_auth": True})
    assert message.startswith("AUTOLOADER_TLS_CA_FILE is not set"), message


def test_client_auth_without_a_served_certificate_is_refused(ca: CertificateAuthority) -> None:
    values = {"tls_ca_file": ca.cert_file, "tls_client_auth": True}
    assert "AUTOLOADER_TLS_CERT_FILE" in config_error(values)
    with pytest.raises(TlsConfigError):
        uvicorn_ssl_options(settings(**values))


def test_unreadable_file_names_variable_and_path(service: CertFiles, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    message = config_error({"tls_cert_file": service.cert, "tls_key_file": missing})
    assert message.startswith("AUTOLOADER_TLS_KEY_FILE: cannot read"), message
    assert str(missing) in message


def test_file_without_pem_content_is_refused(service: CertFiles, tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate")
    message = config_error({"tls_ca_file": not_pem})
    assert message.startswith("AUTOLOADER_TLS_CA_FILE:") and "no PEM CA certificate" in message, message
    message = config_error({"tls_cert_file": service.key, "tls_key_file": service.key})
    assert message.startswith("AUTOLOADER_TLS_CERT_FILE:"), message


def test_certificate_and_key_serve_tls(service: CertFiles) -> None:
    tls = TlsMaterial.from_settings(settings(tls_cert_file=service.cert, tls_key_file=service.key))
    assert isinstance(tls.server_credentials(), grpc.ServerCredentials)
    assert tls.channel_credentials() is None  # no CA: calls stay plaintext
    assert tls.uvicorn_options() == {"ssl_certfile": str(service.cert), "ssl_keyfile": str(service.key)}


def test_ca_makes_calls_tls_with_this_process_certificate(ca: CertificateAuthority, service: CertFiles) -> None:
    tls = TlsMaterial.from_settings(
        settings(tls_ca_file=ca.cert_file, tls_cert_file=service.cert, tls_key_file=service.key)
    )
    assert isinstance(tls.channel_credentials(), grpc.ChannelCredentials)
    assert tls.private_key is not None and tls.certificate is not None
    context = tls.client_ssl_context()
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


def test_client_auth_requires_client_certificates(ca: CertificateAuthority, service: CertFiles) -> None:
    values = {
        "tls_cert_file": service.cert,
        "tls_key_file": service.key,
        "tls_ca_file": ca.cert_file,
        "tls_client_auth": True,
    }
    assert isinstance(server_credentials(settings(**values)), grpc.ServerCredentials)
    options = uvicorn_ssl_options(settings(**values))
    assert options["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert options["ssl_ca_certs"] == str(ca.cert_file)


def test_service_main_ends_with_a_configuration_error(
    service: CertFiles, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """At start, before anything connects: a message naming the variable, not a traceback."""
    monkeypatch.setenv("AUTOLOADER_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("AUTOLOADER_HOME", str(tmp_path))
    monkeypatch.setenv("AUTOLOADER_TLS_CERT_FILE", str(service.cert))
    monkeypatch.delenv("AUTOLOADER_TLS_KEY_FILE", raising=False)
    monkeypatch.setattr(sys, "argv", ["services.tracker", "serve"])

    async def never_started(settings: TrackerSettings) -> service_runtime.RunningService:
        raise AssertionError("started despite the configuration error")

    with pytest.raises(SystemExit) as exited:
        service_runtime.main("tracker", never_started, TrackerSettings)
    expected = "AUTOLOADER_TLS_KEY_FILE is not set, but AUTOLOADER_TLS_CERT_FILE is"
    assert str(exited.value) == f"configuration error: {expected}"
