"""`autoloader config print`: effective settings with their source, secrets never shown."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from autoloader.cli.main import app
from autoloader.cli.redaction import MASK, redact_mapping, redact_secret, redact_url

PLANTED = "Pl4nted-Zebra-9137"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Only the variables a test sets: none from the shell running the tests."""
    for name in list(os.environ):
        if name.upper().startswith("AUTOLOADER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AUTOLOADER_HOME", str(tmp_path / "home"))
    yield


def print_config(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, ["config", "print", *args], env=env)


def line_of(output: str, variable: str) -> list[str]:
    """The words of the text line showing variable (the first, if several processes are shown)."""
    return next(line.split() for line in output.splitlines() if line.split()[:1] == [variable])


def complete_environment() -> dict[str, str]:
    """Every required variable of every process, secrets holding the planted value."""
    return {
        "AUTOLOADER_DATABASE_URL": f"postgresql://loader:{PLANTED}@db.internal:5432/al?sslpassword={PLANTED}",
        "AUTOLOADER_TRACKER_ADDRESS": "tracker:7002",
        "AUTOLOADER_CONTROL_ADDRESS": "control:7001",
        "AUTOLOADER_TOKEN": PLANTED,
        "AUTOLOADER_SECRET_KEYS": f"{PLANTED}=,other=",
        "AUTOLOADER_REST_CATALOG_TOKEN": PLANTED,
        "AUTOLOADER_REST_CATALOG_URI": f"https://reader:{PLANTED}@catalog.internal/api",
        "AUTOLOADER_SPARK_CONF": json.dumps({"spark.hadoop.fs.s3a.secret.key": PLANTED, "spark.executor.memory": "4g"}),
    }


def test_values_from_the_environment_and_defaults_are_shown_with_their_source() -> None:
    result = print_config("--service", "control", env={**complete_environment(), "AUTOLOADER_GRPC_PORT": "7011"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[control]\n")
    assert line_of(result.stdout, "AUTOLOADER_GRPC_PORT") == ["AUTOLOADER_GRPC_PORT", "environment", "7011"]
    assert line_of(result.stdout, "AUTOLOADER_TRACKER_ADDRESS")[1:] == ["environment", "tracker:7002"]
    assert line_of(result.stdout, "AUTOLOADER_DB_POOL_MAX_SIZE")[1:] == ["default", "10"]
    assert line_of(result.stdout, "AUTOLOADER_LOCAL_SOURCE_ROOTS")[1:] == ["default", "*"]
    assert line_of(result.stdout, "AUTOLOADER_SECRET_KEYS_FILE")[1:] == ["default", "(none)"]
    assert "AUTOLOADER_HTTP_PORT" not in result.stdout  # a gateway setting: control does not read it


def test_secrets_and_url_passwords_are_masked_everywhere() -> None:
    for output_format in ("text", "json"):
        result = print_config("--service", "all", "--format", output_format, env=complete_environment())
        assert result.exit_code == 0, result.output
        assert PLANTED not in result.stdout + result.stderr, output_format
    text = print_config("--service", "executor", env=complete_environment()).stdout
    assert line_of(text, "AUTOLOADER_DATABASE_URL")[1:] == [
        "environment",
        "postgresql://loader:****@db.internal:5432/al?sslpassword=****",
    ]
    assert line_of(text, "AUTOLOADER_TOKEN")[1:] == ["environment", MASK]
    assert line_of(text, "AUTOLOADER_REST_CATALOG_URI")[1:] == [
        "environment",
        "https://reader:****@catalog.internal/api",
    ]
    assert '"spark.executor.memory": "4g"' in text  # only the secret-looking key is masked


def test_missing_required_variables_are_reported_not_a_crash() -> None:
    result = print_config("--service", "gateway", env={"AUTOLOADER_HTTP_PORT": "8081"})
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert line_of(result.stdout, "AUTOLOADER_CONTROL_ADDRESS")[1:] == ["missing", "(required,", "not", "set)"]
    assert line_of(result.stdout, "AUTOLOADER_HTTP_PORT")[1:] == ["environment", "8081"]  # the rest still shown
    assert "gateway would not start: AUTOLOADER_CONTROL_ADDRESS: required, not set" in result.stderr
    assert "AUTOLOADER_TRACKER_ADDRESS: required, not set" in result.stderr


def test_a_bad_value_is_reported_and_the_other_values_still_parsed() -> None:
    env = {**complete_environment(), "AUTOLOADER_GRPC_PORT": "not-a-port", "AUTOLOADER_DB_POOL_MAX_SIZE": "3"}
    result = print_config("--service", "tracker", env=env)
    assert result.exit_code == 1
    port = line_of(result.stdout, "AUTOLOADER_GRPC_PORT")
    assert port[1:3] == ["environment", "not-a-port"] and "integer" in " ".join(port[3:])
    assert line_of(result.stdout, "AUTOLOADER_DB_POOL_MAX_SIZE")[1:] == ["environment", "3"]
    assert "tracker would not start: AUTOLOADER_GRPC_PORT" in result.stderr


def test_spark_settings_that_do_not_parse_are_masked_whole() -> None:
    env = {**complete_environment(), "AUTOLOADER_SPARK_CONF": f'{{"spark.hadoop.fs.s3a.secret.key": "{PLANTED}"'}
    result = print_config("--service", "executor", env=env)
    assert result.exit_code == 1
    assert line_of(result.stdout, "AUTOLOADER_SPARK_CONF")[1:3] == ["environment", MASK]
    assert PLANTED not in result.stdout + result.stderr


def test_json_format_parses_with_every_process_and_field() -> None:
    env = complete_environment()
    del env["AUTOLOADER_CONTROL_ADDRESS"]
    result = print_config("--format", "json", env=env)
    assert result.exit_code == 1  # the gateway lacks its control address
    shown = json.loads(result.stdout)
    assert list(shown) == ["control", "tracker", "executor", "gateway"]
    gateway = {s["variable"]: s for s in shown["gateway"]}
    assert gateway["AUTOLOADER_CONTROL_ADDRESS"] == {
        "variable": "AUTOLOADER_CONTROL_ADDRESS",
        "value": None,
        "source": "missing",
        "secret": False,
        "problem": "required, not set",
    }
    assert gateway["AUTOLOADER_HTTP_PORT"]["value"] == 8080 and gateway["AUTOLOADER_HTTP_PORT"]["source"] == "default"
    executor = {s["variable"]: s for s in shown["executor"]}
    assert executor["AUTOLOADER_TOKEN"] == {
        "variable": "AUTOLOADER_TOKEN",
        "value": MASK,
        "source": "environment",
        "secret": True,
        "problem": None,
    }
    assert executor["AUTOLOADER_SPARK_CONF"]["value"] == {
        "spark.hadoop.fs.s3a.secret.key": MASK,
        "spark.executor.memory": "4g",
    }
    assert executor["AUTOLOADER_WORKER_ENABLED"]["value"] is True


def test_an_unknown_service_is_refused() -> None:
    result = print_config("--service", "scheduler")
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("postgresql://user:pw@host/db", "postgresql://user:****@host/db"),
        ("postgresql://user:p@ss@host:5432/db", "postgresql://user:****@host:5432/db"),
        (
            "postgresql://user@host/db?password=pw&sslmode=require",
            "postgresql://user@host/db?password=****&sslmode=require",
        ),
        ("postgresql://host/db", "postgresql://host/db"),
        ("http://[::1/broken@x", MASK),
        ("plain text", "plain text"),
    ],
)
def test_url_passwords_are_masked(value: str, shown: str) -> None:
    assert redact_url(value) == shown


def test_a_secret_is_masked_whole_unless_it_is_a_url() -> None:
    assert redact_secret("token-value") == MASK
    assert redact_secret("x:token-value") == MASK  # a scheme but no host: not a URL to show
    assert redact_secret("postgresql://u:pw@h/db") == "postgresql://u:****@h/db"
    assert redact_secret("") == ""
    assert redact_mapping({"spark.hadoop.fs.s3a.access.key": "AKIA", "spark.master.url": "spark://a:b@h"}) == {
        "spark.hadoop.fs.s3a.access.key": MASK,
        "spark.master.url": "spark://a:****@h",
    }
