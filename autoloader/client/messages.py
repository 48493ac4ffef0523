"""Plain Python values to and from the API's messages: configurations as dicts, roles as names, times as
datetimes, and the update mask a partial change names."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar, cast, overload

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from autoloader.client.errors import FieldViolation, InvalidArgument
from autoloader.control.v1 import control_pb2

IngestionLike = Mapping[str, Any] | control_pb2.Ingestion
RoleLike = str | int
M = TypeVar("M", bound=Message)

# Message fields written as one JSON value rather than an object of fields.
_JSON_SCALARS = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}


def to_ingestion(value: IngestionLike) -> control_pb2.Ingestion:
    """An Ingestion from itself or from its JSON form (the HTTP API's body, proto field names)."""
    if isinstance(value, control_pb2.Ingestion):
        return value
    ingestion = control_pb2.Ingestion()
    try:
        json_format.ParseDict(dict(value), ingestion)
    except json_format.ParseError as error:
        raise InvalidArgument(f"ingestion: {str(error).splitlines()[0]}") from error
    return ingestion


def to_json(message: Message) -> dict[str, Any]:
    """A message as an HTTP request body: proto field names, fields that are set only."""
    value: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return value


def from_json(value: Any, message: M) -> M:
    """Fill message from an HTTP answer, ignoring fields a newer server added."""
    json_format.ParseDict(value, message, ignore_unknown_fields=True)
    return message


def _is_nested_message(field: Any) -> bool:
    message_type = field.message_type
    return (
        message_type is not None
        and not message_type.GetOptions().map_entry
        and message_type.full_name not in _JSON_SCALARS
        and not field.is_repeated
    )


def mask_paths(
    changes: Mapping[str, Any], descriptor: Any = control_pb2.Ingestion.DESCRIPTOR, prefix: str = ""
) -> list[str]:
    """The update mask of a partial change, as the HTTP API reads a PATCH body: nested objects name their
    leaves (`{"source": {"pattern": ...}}` changes source.pattern only); maps and lists are replaced whole."""
    paths = []
    for key, value in changes.items():
        field = descriptor.fields_by_name.get(key)
        if field is None:
            raise InvalidArgument("invalid update", violations=[FieldViolation(prefix + key, "unknown field")])
        if isinstance(value, Mapping) and value and _is_nested_message(field):
            paths += mask_paths(value, field.message_type, f"{prefix}{key}.")
        else:
            paths.append(prefix + key)
    return paths


def select_paths(full: Mapping[str, Any], paths: list[str]) -> dict[str, Any]:
    """The part of a JSON object the paths name; a path to an absent field becomes null (clear it)."""
    selected: dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        source: Any = full
        target = selected
        for name in parents:
            source = source.get(name, {}) if isinstance(source, Mapping) else {}
            target = target.setdefault(name, {})
        target[leaf] = source.get(leaf) if isinstance(source, Mapping) else None
    return selected


def to_role(role: RoleLike) -> control_pb2.Role:
    """ROLE_EDITOR from control_pb2.ROLE_EDITOR, "ROLE_EDITOR" or "editor"."""
    if isinstance(role, int):
        return cast(control_pb2.Role, role)
    name = role.upper()
    name = name if name.startswith("ROLE_") else f"ROLE_{name}"
    try:
        return cast(control_pb2.Role, control_pb2.Role.Value(name))
    except ValueError:
        raise InvalidArgument("invalid role", violations=[FieldViolation("role", f"unknown role {role!r}")]) from None


def role_name(role: int) -> str:
    """ "editor" for ROLE_EDITOR."""
    return control_pb2.Role.Name(role).removeprefix("ROLE_").lower()


@overload
def to_timestamp(value: datetime) -> Timestamp: ...
@overload
def to_timestamp(value: None) -> None: ...
def to_timestamp(value: datetime | None) -> Timestamp | None:
    """A Timestamp of a datetime (naive ones are taken as UTC)."""
    if value is None:
        return None
    timestamp = Timestamp()
    timestamp.FromDatetime(value)
    return timestamp
