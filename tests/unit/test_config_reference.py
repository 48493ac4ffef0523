"""docs/configuration.md is generated from the settings classes: it must be current and leave nothing out."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from autoloader.cli.settings_catalog import CLI_VARIABLES, PROCESS_SETTINGS, is_secret, variable_name
from scripts import config_reference
from services.shared import config

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "configuration.md"


def settings_classes() -> list[type[BaseSettings]]:
    """Every settings class in services/shared/config.py, found rather than listed, so a new one is checked."""
    return [
        value
        for value in vars(config).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value is not BaseSettings
    ]


def table_rows() -> dict[str, list[str]]:
    """The doc's table rows by variable: the cells after the variable's own."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `AUTOLOADER_"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_the_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == config_reference.render(), (
        f"docs/configuration.md is out of date: run `{config_reference.REGENERATE}`"
    )


def test_every_field_of_every_settings_class_is_documented_once_with_its_description() -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = table_rows()
    classes = settings_classes()
    assert len(classes) >= 6
    for settings_type in classes:
        for name, field in settings_type.model_fields.items():
            variable = variable_name(name)
            assert variable in rows, f"{settings_type.__name__}.{name}: {variable} missing from docs/configuration.md"
            assert text.count(f"| `{variable}` |") == 1, f"{variable} is listed more than once"
            assert field.description and field.description in rows[variable][-1], f"{variable}: description"
            if is_secret(field):
                assert "**secret**" in rows[variable][1], f"{variable} is a secret"


def test_each_variable_names_every_process_that_reads_it() -> None:
    rows = table_rows()
    for process, settings_type in PROCESS_SETTINGS.items():
        for name in settings_type.model_fields:
            assert process in rows[variable_name(name)][0].split(", "), f"{process} reads {variable_name(name)}"
    for variable in CLI_VARIABLES:
        assert "CLI" in rows[variable_name(variable.field)][0].split(", ")
    assert rows["AUTOLOADER_DATABASE_URL"][0] == "control, tracker, executor, CLI"
    assert rows["AUTOLOADER_HTTP_PORT"][0] == "gateway"


def test_defaults_and_required_fields_are_shown() -> None:
    rows = table_rows()
    assert rows["AUTOLOADER_GRPC_PORT"][2] == "`0` (a free port)"
    assert rows["AUTOLOADER_HTTP_PORT"][1:3] == ["integer from 0 to 65535", "`8080`"]
    assert rows["AUTOLOADER_WORKER_ENABLED"][2] == "`true`"
    assert rows["AUTOLOADER_HOME"][2] == "`~/.autoloader`"  # not the generating user's home
    assert rows["AUTOLOADER_CONTROL_ADDRESS"][2].startswith("gateway: required")


def test_the_output_does_not_depend_on_who_generates_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    first = config_reference.render()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AUTOLOADER_HOME", str(tmp_path))
    monkeypatch.setenv("AUTOLOADER_GRPC_PORT", "7001")
    assert config_reference.render() == first


def test_check_mode_reports_a_stale_file_and_how_to_regenerate(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "docs" / "configuration.md"
    stale.parent.mkdir()
    stale.write_text("# old\n", encoding="utf-8")
    monkeypatch.setattr(config_reference, "ROOT", tmp_path)
    monkeypatch.setattr(config_reference, "OUTPUT", stale)
    assert config_reference.main(["--check"]) == 1
    assert config_reference.REGENERATE in capsys.readouterr().err
    assert config_reference.main([]) == 0
    assert config_reference.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == config_reference.render()
