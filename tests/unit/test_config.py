from __future__ import annotations

from pathlib import Path

import pytest

from services.shared.config import GatewaySettings, ServiceSettings


def test_settings_come_from_the_environment_and_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOADER_DATABASE_URL", "postgresql://u:hunter2@db:5432/x")
    monkeypatch.setenv("AUTOLOADER_GRPC_PORT", "7001")
    monkeypatch.setenv("AUTOLOADER_HOME", "/srv/al")
    settings = ServiceSettings()  # type: ignore[call-arg]
    assert settings.grpc_port == 7001
    assert settings.home == Path("/srv/al")
    assert settings.database_url.get_secret_value().endswith("@db:5432/x")
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings)


def test_bad_values_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOLOADER_CONTROL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("AUTOLOADER_TRACKER_ADDRESS", "127.0.0.1:2")
    monkeypatch.setenv("AUTOLOADER_HTTP_PORT", "99999")
    with pytest.raises(ValueError, match="http_port"):
        GatewaySettings()  # type: ignore[call-arg]


def test_a_missing_variable_ends_the_process_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.shared.config import load_settings

    monkeypatch.delenv("AUTOLOADER_DATABASE_URL", raising=False)
    monkeypatch.setenv("AUTOLOADER_GRPC_PORT", "not-a-port")
    with pytest.raises(SystemExit) as stopped:
        load_settings(ServiceSettings)
    message = str(stopped.value)
    assert "AUTOLOADER_DATABASE_URL: Field required" in message
    assert "AUTOLOADER_GRPC_PORT" in message
