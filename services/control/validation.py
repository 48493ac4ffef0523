"""Checks on an ingestion configuration. Every violation names the field (JSON path) and the reason."""

from __future__ import annotations

import re
import urllib.parse
import zoneinfo
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from croniter import CroniterBadDateError, croniter

from services.control.models import (
    LISTING_MODES,
    Column,
    Destination,
    Ingestion,
    Listing,
    MetadataColumns,
    Schedule,
    SchemaPolicy,
    Source,
    Webhook,
)
from services.control.schema_ddl import DdlError, check_name, parse_columns, parse_type
from services.shared.errors import FieldViolation, InvalidArgument
from services.shared.spark_types import parse_partition

FORMATS = ("csv", "json", "parquet", "avro", "orc", "text")
WRITE_MODES = ("append", "merge")
EVOLUTION_MODES = ("add_new_columns", "fail_on_new_columns", "rescue", "none")
MAX_SAMPLE_FILES = 100_000
# Table properties the run protocol depends on (write-audit-publish): users cannot change them.
MANAGED_PROPERTIES = frozenset({"write.wap.enabled", "write.spark.accept-any-schema"})
FORMAT_VERSIONS = ("1", "2")
METADATA_SUFFIXES = ("source_file", "source_size", "source_modified_at", "ingested_at", "run_id")
MAX_RETRIES_LIMIT = 100

# Checked with fullmatch: "$" alone also matches before a trailing newline.
INGESTION_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,127}$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
_CREDENTIALS_REF = re.compile(r"^(env|file|profile):\S{1,512}$")
_PROPERTY_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PREFIX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")

OVERWRITE_REFUSAL = (
    "overwrite mode is not supported; use 'append' (or 'merge' to upsert by key). To start fresh with only new files, "
    "drop the destination table and trigger a run. To reprocess every file, drop the destination table, "
    "clear the ingestion's processed files (DELETE /api/v1/ingestions/{ingestion_id}/processed-files) and "
    "trigger a run."
)


def validate_ingestion_id(ingestion_id: str) -> list[FieldViolation]:
    if INGESTION_ID.fullmatch(ingestion_id):
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
    metadata = ingestion.metadata_columns
    metadata_names = {(metadata.prefix + n).lower() for n in METADATA_SUFFIXES} if metadata.enabled else set()
    violations += _schema(ingestion.schema, ingestion.destination, metadata_names)
    violations += _metadata_columns(ingestion.metadata_columns)
    if not 0 <= ingestion.max_retries <= MAX_RETRIES_LIMIT:
        violations.append(FieldViolation("max_retries", f"must be between 0 and {MAX_RETRIES_LIMIT}"))
    for name in ("max_files_per_run", "max_bytes_per_run"):
        value = getattr(ingestion, name)
        if value is not None and value < 1:
            violations.append(FieldViolation(name, "must be at least 1 when set"))
    if ingestion.schedule is not None:
        violations += _schedule(ingestion.schedule)
    if ingestion.webhook is not None:
        violations += _webhook(ingestion.webhook)
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
        if not _OPTION_KEY.fullmatch(key):
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
    if source.region and not _REGION.fullmatch(source.region):
        violations.append(FieldViolation("source.region", "must look like us-east-1"))
    if source.credentials_ref and not _CREDENTIALS_REF.fullmatch(source.credentials_ref):
        violations.append(FieldViolation("source.credentials_ref", "must be env:NAME, file:/path or profile:NAME"))
    return violations + _listing(source.listing)


MAX_FULL_LISTING_EVERY_RUNS = 10_000
MAX_FULL_LISTING_INTERVAL_SECONDS = 31 * 24 * 3600


def _listing(listing: Listing) -> list[FieldViolation]:
    violations = []
    if listing.mode not in LISTING_MODES:
        violations.append(FieldViolation("source.listing.mode", f"must be one of: {', '.join(LISTING_MODES)}"))
    if not 1 <= listing.full_listing_every_runs <= MAX_FULL_LISTING_EVERY_RUNS:
        violations.append(
            FieldViolation(
                "source.listing.full_listing_every_runs", f"must be between 1 and {MAX_FULL_LISTING_EVERY_RUNS}"
            )
        )
    if not 0 <= listing.full_listing_interval_seconds <= MAX_FULL_LISTING_INTERVAL_SECONDS:
        violations.append(
            FieldViolation(
                "source.listing.full_listing_interval_seconds",
                f"must be between 0 (no time limit) and {MAX_FULL_LISTING_INTERVAL_SECONDS} (31 days)",
            )
        )
    return violations


def _source_uri(uri: str) -> list[FieldViolation]:
    if not uri:
        return [FieldViolation("source.uri", "is required: s3://bucket/prefix/ or file:///absolute/dir/")]
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in uri):
        # urlsplit drops tabs and newlines, so the checks below would pass a URI other than the one stored.
        return [FieldViolation("source.uri", "must not contain control characters")]
    parts = urlsplit(uri)
    if not uri.startswith(("s3://", "file://")):
        return [FieldViolation("source.uri", "scheme must be s3:// or file:// (lowercase)")]
    if ".." in unquote(parts.path).split("/"):
        return [FieldViolation("source.uri", "must not contain '..' segments")]
    if parts.scheme == "s3":
        if not parts.hostname or not _BUCKET.fullmatch(parts.netloc):
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
    elif len(parts) not in (2, 3) or not all(_IDENTIFIER.fullmatch(p) for p in parts):
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
            FieldViolation(
                "destination.write_mode", f"'{destination.write_mode}' is not supported; use 'append' or 'merge'"
            )
        )
    violations += _merge(destination)
    for index, transform in enumerate(destination.partition_by):
        if partition_column(transform) is None:
            violations.append(
                FieldViolation(
                    f"destination.partition_by[{index}]",
                    f"{transform!r} is not a partition transform; use column, years(column), months(column),"
                    " days(column), hours(column), bucket(N, column) or truncate(W, column)",
                )
            )
    violations += _table_properties(destination.table_properties)
    return violations


def partition_column(transform: str) -> str | None:
    """The column a partition transform reads, or None when the text is not a transform."""
    parsed = parse_partition(transform)
    return parsed[2] if parsed is not None else None


def _merge(destination: Destination) -> list[FieldViolation]:
    if destination.write_mode != "merge":
        violations = []
        if destination.merge_keys:
            violations.append(FieldViolation("destination.merge_keys", "is only used with write_mode 'merge'"))
        if destination.merge_order_by:
            violations.append(FieldViolation("destination.merge_order_by", "is only used with write_mode 'merge'"))
        return violations
    if not destination.merge_keys:
        return [FieldViolation("destination.merge_keys", "is required with write_mode 'merge': the key columns")]
    violations = []
    seen: set[str] = set()
    for index, key in enumerate(destination.merge_keys):
        problem = check_name(key)
        if problem is None and key.lower() in seen:
            problem = f"{key!r} is listed twice"
        if problem:
            violations.append(FieldViolation(f"destination.merge_keys[{index}]", problem))
        seen.add(key.lower())
    if destination.merge_order_by:
        problem = check_name(destination.merge_order_by)
        if problem is None and destination.merge_order_by.lower() in seen:
            problem = "must not be one of the merge keys"
        if problem:
            violations.append(FieldViolation("destination.merge_order_by", problem))
    return violations


def _table_properties(properties: dict[str, str]) -> list[FieldViolation]:
    violations = []
    for key, value in properties.items():
        path = f"destination.table_properties.{key}"
        if not _PROPERTY_KEY.fullmatch(key):
            violations.append(FieldViolation(path, "property names are letters, digits, '.', '_' or '-'"))
        elif key in MANAGED_PROPERTIES:
            violations.append(FieldViolation(path, "is set by Autoloader (write-audit-publish) and cannot be changed"))
        elif key == "format-version" and value not in FORMAT_VERSIONS:
            violations.append(FieldViolation(path, f"must be one of: {', '.join(FORMAT_VERSIONS)}"))
        elif len(value) > 1024:
            violations.append(FieldViolation(path, "must be at most 1024 characters"))
    return violations


def explicit_columns(schema: SchemaPolicy) -> list[Column]:
    """The configured columns (from ddl or columns) in normal form; [] when the schema is inferred."""
    if schema.ddl:
        return parse_columns(schema.ddl)
    return [Column(name=c.name, type=parse_type(c.type)) for c in schema.columns]


def _schema(schema: SchemaPolicy, destination: Destination, metadata_names: set[str]) -> list[FieldViolation]:
    violations = []
    if schema.evolution_mode not in EVOLUTION_MODES:
        violations.append(FieldViolation("schema.evolution_mode", f"must be one of: {', '.join(EVOLUTION_MODES)}"))
    if not 1 <= schema.sample_files <= MAX_SAMPLE_FILES:
        violations.append(FieldViolation("schema.sample_files", f"must be between 1 and {MAX_SAMPLE_FILES}"))
    if schema.sample_bytes < 1:
        violations.append(FieldViolation("schema.sample_bytes", "must be at least 1"))
    for name, type_text in schema.hints.items():
        problem = check_name(name)
        if problem is None:
            try:
                parse_type(type_text)
            except DdlError as error:
                problem = f"type {type_text!r}: {error}"
        if problem:
            violations.append(FieldViolation(f"schema.hints.{name}", problem))
    if schema.ddl and schema.columns:
        violations.append(FieldViolation("schema.columns", "give the columns either as ddl or as columns, not both"))
        return violations
    columns: list[Column] = []
    if schema.ddl:
        try:
            columns = parse_columns(schema.ddl)
        except DdlError as error:
            return [*violations, FieldViolation("schema.ddl", str(error))]
    for index, column in enumerate(schema.columns):
        problem = check_name(column.name)
        if problem is None:
            try:
                parse_type(column.type)
            except DdlError as error:
                problem = f"type {column.type!r}: {error}"
        if problem:
            violations.append(FieldViolation(f"schema.columns[{index}]", problem))
        columns.append(column)
    names = [c.name.lower() for c in columns]
    for name in sorted({n for n in names if names.count(n) > 1}):
        violations.append(FieldViolation("schema.ddl" if schema.ddl else "schema.columns", f"{name!r} appears twice"))
    if columns:
        violations += _refer_to_columns(destination, set(names) | metadata_names)
    return violations


def _refer_to_columns(destination: Destination, names: set[str]) -> list[FieldViolation]:
    # Metadata columns (e.g. days(_ingested_at)) are not in the explicit schema but are in the table.
    """With an explicit schema, keys and partition columns must be among its columns."""
    violations = []
    for index, key in enumerate(destination.merge_keys):
        if key.lower() not in names:
            violations.append(FieldViolation(f"destination.merge_keys[{index}]", f"{key!r} is not in the schema"))
    order_by = destination.merge_order_by
    if order_by and destination.write_mode == "merge" and order_by.lower() not in names:
        violations.append(FieldViolation("destination.merge_order_by", f"{order_by!r} is not in the schema"))
    for index, transform in enumerate(destination.partition_by):
        column = partition_column(transform)
        if column is not None and column.lower() not in names:
            violations.append(
                FieldViolation(f"destination.partition_by[{index}]", f"column {column!r} is not in the schema")
            )
    return violations


def _metadata_columns(metadata: MetadataColumns) -> list[FieldViolation]:
    if _PREFIX.fullmatch(metadata.prefix):
        return []
    return [
        FieldViolation(
            "metadata_columns.prefix", "must be 1-32 letters, digits or _, not starting with a digit (default '_')"
        )
    ]


def _schedule(schedule: Schedule) -> list[FieldViolation]:
    violations = []
    if len(schedule.cron.split()) != 5 or not croniter.is_valid(schedule.cron):
        violations.append(FieldViolation("schedule.cron", "must be a five-field cron expression such as '0 2 * * *'"))
    elif not _ever_fires(schedule.cron):
        violations.append(FieldViolation("schedule.cron", "never fires (a day that no month has, such as 31 February)"))
    if schedule.timezone:
        try:
            zoneinfo.ZoneInfo(schedule.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            violations.append(FieldViolation("schedule.timezone", "must be an IANA time zone such as Europe/Berlin"))
    return violations


def _ever_fires(cron: str) -> bool:
    # A valid expression may name no real date ("0 0 31 2 *"); computing its next fire time would then fail.
    try:
        croniter(cron, datetime(2000, 1, 1, tzinfo=UTC)).get_next(datetime)
    except CroniterBadDateError:
        return False
    return True


MIN_WEBHOOK_SECRET = 16
MAX_WEBHOOK_ATTEMPTS = 20


def _webhook(webhook: Webhook) -> list[FieldViolation]:
    """The shape of a webhook; whether its address may be called is checked by the service (it resolves)."""
    violations = []
    parsed = urllib.parse.urlsplit(webhook.url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        violations.append(FieldViolation("webhook.url", "must be an http:// or https:// URL with a host"))
    elif parsed.username or parsed.password:
        violations.append(FieldViolation("webhook.url", "must not carry a user name or password"))
    elif len(webhook.url) > 2048:
        violations.append(FieldViolation("webhook.url", "must be at most 2048 characters"))
    if len(webhook.secret) < MIN_WEBHOOK_SECRET:
        violations.append(FieldViolation("webhook.secret", f"must be at least {MIN_WEBHOOK_SECRET} characters"))
    if not 1 <= webhook.max_attempts <= MAX_WEBHOOK_ATTEMPTS:
        violations.append(FieldViolation("webhook.max_attempts", f"must be between 1 and {MAX_WEBHOOK_ATTEMPTS}"))
    return violations
