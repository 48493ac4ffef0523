"""The settings a process would start with in this environment: each value, masked if secret, where it came
from, and what is wrong with it; built the way the process builds them, but without stopping at the first
missing or invalid variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_origin

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from autoloader.cli.redaction import MASK, redact_mapping, redact_secret, redact_url
from autoloader.cli.settings_catalog import is_secret, variable_name

DEFAULT = "default"
ENVIRONMENT = "environment"
MISSING = "missing"


@dataclass(frozen=True)
class EffectiveSetting:
    variable: str
    value: Any  # JSON-ready, secrets already masked
    source: str  # DEFAULT, ENVIRONMENT or MISSING
    secret: bool
    problem: str | None = None


def effective_settings(settings_type: type[BaseSettings]) -> list[EffectiveSetting]:
    """One entry per field of settings_type, in the order the class declares them."""
    built, problems = _build(settings_type)
    # The settings read variable names without regard to case, so the source check does too.
    environment = {name.upper(): value for name, value in os.environ.items()}
    settings = []
    for name, field in settings_type.model_fields.items():
        variable = variable_name(name)
        secret = is_secret(field)
        if variable in environment:
            source = ENVIRONMENT
        elif field.is_required():
            source = MISSING
        else:
            source = DEFAULT
        if built is not None and name not in problems:
            value = _shown(getattr(built, name), secret)
        elif variable in environment:
            value = _shown_raw(environment[variable], field, secret)
        else:
            value = None if field.is_required() else _shown(field.get_default(call_default_factory=True), secret)
        settings.append(EffectiveSetting(variable, value, source, secret, problems.get(name)))
    return settings


def _build(settings_type: type[BaseSettings]) -> tuple[BaseSettings | None, dict[str, str]]:
    """The settings object and the problem of each field that failed. A failed field is replaced by a stand-in
    and the object built again, so the other fields still show their parsed values."""
    problems: dict[str, str] = {}
    stand_ins: dict[str, Any] = {}
    for _ in range(2):
        try:
            return settings_type(**stand_ins), problems
        except ValidationError as error:
            for failure in error.errors():
                name = str(failure["loc"][0]) if failure["loc"] else ""
                field = settings_type.model_fields.get(name)
                if field is None:
                    return None, problems
                problems.setdefault(name, "required, not set" if failure["type"] == "missing" else failure["msg"])
                stand_ins[name] = _stand_in(field)
    return None, problems


def _stand_in(field: FieldInfo) -> Any:
    # Every required field is a string today; should one not be, the second build fails and raw values show.
    return "" if field.is_required() else field.get_default(call_default_factory=True)


def _shown(value: Any, secret: bool) -> Any:
    if isinstance(value, SecretStr):
        return redact_secret(value.get_secret_value())
    if isinstance(value, str):
        return redact_secret(value) if secret else redact_url(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return redact_mapping({str(k): str(v) for k, v in value.items()})
    return value


def _shown_raw(value: str, field: FieldInfo, secret: bool) -> str:
    """A variable's text that did not parse. Structured text (a JSON object of settings) may hold secrets
    anywhere, so it is masked whole."""
    if secret:
        return redact_secret(value)
    return MASK if get_origin(field.annotation) in (dict, list) else redact_url(value)
