"""Checks on an ingestion configuration. Every violation names the field (JSON path) and the reason."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import fields, is_dataclass
from urllib.parse import unquote, urlsplit

from croniter import croniter

from services.control.models import Destination, Ingestion, Schedule, Source
from services.shared.errors import FieldViolation, InvalidArgument

FORMATS = ("csv", "json", "parquet", "avro", "orc", "text")
WRITE_MODES = ("append",)
MAX_RETRIES_LIMIT = 100

INGESTION_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,127}$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
_CREDENTIALS_REF = re.compile(r"^(env|file|profile):\S{1,512}$")

OVERWRITE_REFUSAL = (
    "overwrite mode is not supported; 'append' is the only write mode. To start fresh with only new files, "
    "drop the destination table and trigger a run. To reprocess every file, drop the destination table, "
    "clear the ingestion's processed files (DELETE /api/v1/ingestions/{ingestion_id}/processed-files) and "
    "trigger a run."
)


def validate_ingestion_id(ingestion_id: str) -> list[FieldViolation]:
    if INGESTION_ID.match(ingestion_id):
        return []
    return [
        FieldViolation(
            "ingestion_id",
            "must be 1-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit",
        )
    ]


def _nul_characters(value: object, path: str) -> list[FieldViolation]:
    """Text fields holding U+0000, which PostgreSQL cannot store (and no real value contains)."""
    if isinstance(value, str):
        return [FieldViolation(path, "must not contain the NUL character")] if "\x00" in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            found += _nul_characters(key, path) + _nul_characters(item, f"{path}.{key}")
        return found
    if is_dataclass(value):
        found = []
        for field in fields(value):
            prefix = f"{path}.{field.name}" if path else field.name
            found += _nul_characters(getattr(value, field.name), prefix)
        return found
    return []


def validate(ingestion: Ingestion) -> None:
    """Raise InvalidArgument listing every problem of the configuration, or return."""
    nul = _nul_characters(ingestion, "")
    if nul:
        raise InvalidArgument.of(nul)
    violations = validate_ingestion_id(ingestion.ingestion_id)
    if not ingestion.name.strip():
        violations.append(FieldViolation("name", "is required"))
    elif len(ingestion.name) > 200:
        violations.append(FieldViolation("name", "must be at most 200 characters"))
    violations += _source(ingestion.source)
    violations += _destination(ingestion.destination)
    if not 0 <= ingestion.max_retries <= MAX_RETRIES_LIMIT:
        violations.append(FieldViolation("max_retries", f"must be between 0 and {MAX_RETRIES_LIMIT}"))
    for name in ("max_files_per_run", "max_bytes_per_run"):
        value = getattr(ingestion, name)
        if value is not None and value < 1:
            violations.append(FieldViolation(name, "must be at least 1 when set"))
    if ingestion.schedule is not None:
        violations += _schedule(ingestion.schedule)
    if violations:
        raise InvalidArgument.of(violations)


def _source(source: Source) -> list[FieldViolation]:
    violations = _source_uri(source.uri)
    if source.format not in FORMATS:
        reason = "is required" if not source.format else f"'{source.format}' is not supported"
        violations.append(FieldViolation("source.format", f"{reason}; use one of: {', '.join(FORMATS)}"))
    if len(source.pattern) > 1024:
        violations.append(FieldViolation("source.pattern", "must be at most 1024 characters"))
    elif ".." in source.pattern.split("/"):
        violations.append(FieldViolation("source.pattern", "must not contain '..' segments"))
    for key, value in source.options.items():
        if not _OPTION_KEY.match(key):
            violations.append(FieldViolation(f"source.options.{key}", "option names are letters, digits, _ or ."))
        elif len(value) > 4096:
            violations.append(FieldViolation(f"source.options.{key}", "must be at most 4096 characters"))
    is_s3 = source.uri.lower().startswith("s3://")  # a wrongly cased scheme is reported once, on uri
    if source.endpoint_url:
        parts = urlsplit(source.endpoint_url)
        if not is_s3:
            violations.append(FieldViolation("source.endpoint_url", "is only used with s3:// sources"))
        elif parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            violations.append(FieldViolation("source.endpoint_url", "must look like https://host[:port] with no path"))
    if source.region and not _REGION.match(source.region):
        violations.append(FieldViolation("source.region", "must look like us-east-1"))
    if source.credentials_ref and not _CREDENTIALS_REF.match(source.credentials_ref):
        violations.append(FieldViolation("source.credentials_ref", "must be env:NAME, file:/path or profile:NAME"))
    return violations


def _source_uri(uri: str) -> list[FieldViolation]:
    if not uri:
        return [FieldViolation("source.uri", "is required: s3://bucket/prefix/ or file:///absolute/dir/")]
    parts = urlsplit(uri)
    if not uri.startswith(("s3://", "file://")):
        return [FieldViolation("source.uri", "scheme must be s3:// or file:// (lowercase)")]
    if ".." in unquote(parts.path).split("/"):
        return [FieldViolation("source.uri", "must not contain '..' segments")]
    if parts.scheme == "s3":
        if not parts.hostname or not _BUCKET.match(parts.netloc):
            return [FieldViolation("source.uri", "s3:// URI needs a valid bucket name: s3://bucket/prefix/")]
        if parts.query or parts.fragment:
            return [FieldViolation("source.uri", "must not have a query or fragment")]
        if ".." in parts.path.split("/"):
            return [FieldViolation("source.uri", "must not contain '..' segments")]
        return []
    if parts.scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            return [FieldViolation("source.uri", "file URI must be absolute with no host: file:///absolute/dir/")]
        if ".." in parts.path.split("/"):
            return [FieldViolation("source.uri", "must not contain '..' segments")]
        return []
    return [FieldViolation("source.uri", "scheme must be s3:// or file://")]


def _destination(destination: Destination) -> list[FieldViolation]:
    violations = []
    parts = destination.table.split(".")
    if not destination.table:
        violations.append(FieldViolation("destination.table", "is required: db.table or catalog.db.table"))
    elif len(parts) not in (2, 3) or not all(_IDENTIFIER.match(p) for p in parts):
        violations.append(
            FieldViolation(
                "destination.table",
                "must be db.table or catalog.db.table; each part letters, digits or _, not starting with a digit",
            )
        )
    if destination.write_mode == "overwrite":
        violations.append(FieldViolation("destination.write_mode", OVERWRITE_REFUSAL))
    elif destination.write_mode not in WRITE_MODES:
        violations.append(
            FieldViolation("destination.write_mode", f"'{destination.write_mode}' is not supported; use 'append'")
        )
    return violations


def _schedule(schedule: Schedule) -> list[FieldViolation]:
    violations = []
    if len(schedule.cron.split()) != 5 or not croniter.is_valid(schedule.cron):
        violations.append(FieldViolation("schedule.cron", "must be a five-field cron expression such as '0 2 * * *'"))
    if schedule.timezone:
        try:
            zoneinfo.ZoneInfo(schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            violations.append(FieldViolation("schedule.timezone", "must be an IANA time zone such as Europe/Berlin"))
    return violations
