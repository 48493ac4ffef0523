"""The ingestion configuration as the control service's use cases see it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import datetime
from typing import Any

DEFAULT_MAX_RETRIES = 3
DEFAULT_WRITE_MODE = "append"
DEFAULT_EVOLUTION_MODE = "add_new_columns"
DEFAULT_SAMPLE_FILES = 100
DEFAULT_SAMPLE_BYTES = 64 * 1024 * 1024
DEFAULT_METADATA_PREFIX = "_"


LISTING_MODES = ("full", "incremental")
DEFAULT_FULL_LISTING_EVERY_RUNS = 10


@dataclass(frozen=True)
class Listing:
    """How runs list the source: whole every time, or only keys after the greatest one tracked, with a full
    listing every `full_listing_every_runs` runs (or after `full_listing_interval_seconds`) as a backstop."""

    mode: str = "full"
    full_listing_every_runs: int = DEFAULT_FULL_LISTING_EVERY_RUNS
    full_listing_interval_seconds: int = 0


@dataclass(frozen=True)
class Source:
    uri: str = ""
    pattern: str = ""
    format: str = ""
    options: dict[str, str] = field(default_factory=dict)
    endpoint_url: str = ""
    region: str = ""
    credentials_ref: str = ""
    listing: Listing = field(default_factory=Listing)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Source:
        return cls(**{**stored, "listing": Listing(**stored.get("listing", {}))})


@dataclass(frozen=True)
class Destination:
    table: str = ""
    write_mode: str = DEFAULT_WRITE_MODE
    merge_keys: tuple[str, ...] = ()
    merge_order_by: str = ""
    partition_by: tuple[str, ...] = ()
    table_properties: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> Destination:
        return cls(
            **{
                **stored,
                "merge_keys": tuple(stored.get("merge_keys", ())),
                "partition_by": tuple(stored.get("partition_by", ())),
            }
        )


@dataclass(frozen=True)
class Column:
    name: str = ""
    type: str = ""


@dataclass(frozen=True)
class SchemaPolicy:
    """Explicit columns (ddl or columns), type hints, and what new columns in the files do to the table."""

    ddl: str = ""
    columns: tuple[Column, ...] = ()
    hints: dict[str, str] = field(default_factory=dict)
    evolution_mode: str = DEFAULT_EVOLUTION_MODE
    sample_files: int = DEFAULT_SAMPLE_FILES
    sample_bytes: int = DEFAULT_SAMPLE_BYTES
    rescue_data: bool = True

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> SchemaPolicy:
        return cls(**{**stored, "columns": tuple(Column(**c) for c in stored.get("columns", ()))})


@dataclass(frozen=True)
class MetadataColumns:
    enabled: bool = False
    prefix: str = DEFAULT_METADATA_PREFIX


@dataclass(frozen=True)
class Schedule:
    cron: str = ""
    timezone: str = ""


DEFAULT_WEBHOOK_ATTEMPTS = 6
# What reads show instead of a stored secret; writing it back keeps the stored one.
MASKED_SECRET = "****"


@dataclass(frozen=True)
class Webhook:
    url: str = ""
    secret: str = ""
    max_attempts: int = DEFAULT_WEBHOOK_ATTEMPTS


@dataclass(frozen=True)
class Ingestion:
    ingestion_id: str = ""
    name: str = ""
    source: Source = field(default_factory=Source)
    destination: Destination = field(default_factory=Destination)
    max_retries: int = DEFAULT_MAX_RETRIES
    max_files_per_run: int | None = None
    max_bytes_per_run: int | None = None
    schedule: Schedule | None = None
    enabled: bool = True
    schema: SchemaPolicy = field(default_factory=SchemaPolicy)
    metadata_columns: MetadataColumns = field(default_factory=MetadataColumns)
    webhook: Webhook | None = None
    owner: str = ""
    create_time: datetime | None = None
    update_time: datetime | None = None
    next_fire_time: datetime | None = None


# Set by the service, never by a client.
OUTPUT_ONLY_FIELDS = frozenset({"ingestion_id", "owner", "create_time", "update_time", "next_fire_time"})


def updatable_paths() -> frozenset[str]:
    """Every field path an update may name: top-level fields and the fields of nested messages, at any depth."""
    paths: set[str] = set()
    defaults = {"schedule": Schedule(), "webhook": Webhook()}
    for top in fields(Ingestion):
        if top.name in OUTPUT_ONLY_FIELDS:
            continue
        paths.update(_paths_of(top.name, defaults.get(top.name, getattr(Ingestion(), top.name))))
    return frozenset(paths)


def _paths_of(path: str, value: Any) -> set[str]:
    paths = {path}
    if is_dataclass(value):
        for inner in fields(value):
            paths |= _paths_of(f"{path}.{inner.name}", getattr(value, inner.name))
    return paths


def apply_paths(current: Ingestion, changes: Ingestion, paths: list[str]) -> Ingestion:
    """Copy the fields named by dotted paths from changes onto current."""
    for path in paths:
        current = _replace_path(current, changes, path.split("."))
    return current


def _replace_path(target: Any, source: Any, parts: list[str]) -> Any:
    head, *rest = parts
    new_value = getattr(source, head)
    if rest and getattr(target, head) is not None and new_value is not None:
        new_value = _replace_path(getattr(target, head), new_value, rest)
    return replace(target, **{head: new_value})
