"""HTTP request → proto request message, and proto response → JSON, following the route's HTTP rule.

JSON uses the proto field names (snake_case). Unknown fields are refused, naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.routes import Route
from services.shared.errors import FieldViolation, InvalidArgument

# protobuf's stubs type descriptors as unions of its C and Python classes; here they are used duck-typed.
Descriptor = Any

_WELL_KNOWN_JSON_SCALARS = {
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
    "google.protobuf.Struct",
    "google.protobuf.Value",
}
_INTEGER_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
}


def _is_map(field: Any) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _is_nested_message(field: Any) -> bool:
    return (
        field.type == FieldDescriptor.TYPE_MESSAGE
        and not _is_map(field)
        and field.message_type.full_name not in _WELL_KNOWN_JSON_SCALARS
    )


def unknown_fields(value: Any, descriptor: Descriptor, prefix: str = "") -> list[FieldViolation]:
    """JSON paths of keys that are not fields of the message (checked before parsing, for clear errors)."""
    if not isinstance(value, dict):
        return []
    violations = []
    for key, item in value.items():
        field = descriptor.fields_by_name.get(key)
        path = f"{prefix}{key}"
        if field is None:
            violations.append(FieldViolation(path, "unknown field"))
        elif _is_nested_message(field) and not field.is_repeated:
            violations += unknown_fields(item, field.message_type, f"{path}.")
    return violations


def field_mask_paths(value: dict[str, Any], descriptor: Descriptor, prefix: str = "") -> list[str]:
    """The fields a JSON patch names: nested objects name their leaves, maps and lists stay whole."""
    paths = []
    for key, item in value.items():
        field = descriptor.fields_by_name.get(key)
        if (
            field is not None
            and isinstance(item, dict)
            and _is_nested_message(field)
            and not field.is_repeated
            and item
        ):
            paths += field_mask_paths(item, field.message_type, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"request body is not valid JSON: {e}") from e
    except RecursionError as e:
        raise InvalidArgument(_TOO_DEEP) from e
    if not isinstance(value, dict):
        raise InvalidArgument("request body must be a JSON object")
    if _depth(value) > MAX_BODY_DEPTH:
        raise InvalidArgument(_TOO_DEEP)
    return value


# No request of the API nests nearly this deep; deeper bodies would only exhaust the recursion of later checks.
MAX_BODY_DEPTH = 32
_TOO_DEEP = f"request body is nested too deeply (more than {MAX_BODY_DEPTH} levels)"


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in a parsed JSON value, found without recursion."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children)
    return deepest


def _parse_into(value: dict[str, Any], message: Message, prefix: str) -> None:
    violations = unknown_fields(value, message.DESCRIPTOR, prefix)
    if violations:
        raise InvalidArgument.of(violations)
    try:
        json_format.ParseDict(value, message)
    except json_format.ParseError as e:
        detail = str(e).splitlines()[0]
        raise InvalidArgument(f"request body: {detail}") from e


def _scalar_from_query(field: Any, raw: str) -> Any:
    if field.type in _INTEGER_TYPES:
        return int(raw)
    if field.type == FieldDescriptor.TYPE_BOOL:
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError("expected true or false")
        return raw.lower() in ("true", "1")
    if field.type in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return float(raw)
    if field.type == FieldDescriptor.TYPE_ENUM:
        enum_value = field.enum_type.values_by_name.get(raw)
        if enum_value is None:
            raise ValueError("expected one of " + ", ".join(field.enum_type.values_by_name))
        return enum_value.number
    if field.type == FieldDescriptor.TYPE_STRING:
        return raw
    raise ValueError("cannot be given as a query parameter")


def _is_timestamp(field: Any) -> bool:
    is_message = field.type == FieldDescriptor.TYPE_MESSAGE
    return bool(is_message and field.message_type.full_name == Timestamp.DESCRIPTOR.full_name)


def _apply_query(message: Message, query: list[tuple[str, str]], bound: set[str]) -> None:
    violations = []
    for key, raw in query:
        field = message.DESCRIPTOR.fields_by_name.get(key)
        if field is not None and key not in bound and _is_timestamp(field):
            try:
                getattr(message, key).FromJsonString(raw)
            except ValueError:
                violations.append(
                    FieldViolation(key, f"invalid value {raw!r}: expected RFC 3339, e.g. 2026-01-31T00:00:00Z")
                )
            continue
        if field is None or key in bound or field.type == FieldDescriptor.TYPE_MESSAGE:
            violations.append(FieldViolation(key, "unknown query parameter"))
            continue
        try:
            value = _scalar_from_query(field, raw)
        except ValueError as e:
            violations.append(FieldViolation(key, f"invalid value {raw!r}: {e}"))
            continue
        try:
            if field.is_repeated:
                getattr(message, key).append(value)
            else:
                setattr(message, key, value)
        except (ValueError, TypeError) as e:
            violations.append(FieldViolation(key, f"invalid value {raw!r}: {e}"))
    if violations:
        raise InvalidArgument.of(violations)


def _nul_violations(value: Any, path: str) -> list[FieldViolation]:
    """Fields holding a NUL character: PostgreSQL text cannot store one, and no name or id needs it."""
    if isinstance(value, str):
        return [FieldViolation(path, "must not contain NUL characters")] if "\x00" in value else []
    if isinstance(value, dict):
        return [v for key, item in value.items() for v in _nul_violations(item, f"{path}.{key}" if path else key)]
    if isinstance(value, list):
        return [v for index, item in enumerate(value) for v in _nul_violations(item, f"{path}[{index}]")]
    return []


def request_from_http(route: Route, path_params: dict[str, str], query: list[tuple[str, str]], body: bytes) -> Message:
    value = _parse_json_object(body) if route.body else {}
    violations = (
        _nul_violations(path_params, "")
        + [violation for key, raw in query for violation in _nul_violations(raw, key)]
        + _nul_violations(value, "")  # named inside the body, as its other checks name fields
    )
    if violations:
        raise InvalidArgument.of(violations)
    message: Any = message_factory.GetMessageClass(route.method.input_type)()
    bound = set(route.path_variables)
    if route.body == "*":
        _parse_into(value, message, "")
        bound |= set(message.DESCRIPTOR.fields_by_name)
    elif route.body:
        target = getattr(message, route.body)
        _parse_into(value, target, "")
        bound.add(route.body)
        mask_field = message.DESCRIPTOR.fields_by_name.get("update_mask")
        if mask_field is not None and route.http_method == "PATCH":
            # Like other HTTP/JSON gateways: a PATCH changes exactly the fields present in its body.
            message.update_mask.paths.extend(field_mask_paths(value, target.DESCRIPTOR))
            bound.add("update_mask")
    for name, raw in path_params.items():
        setattr(message, name, raw)
    _apply_query(message, query, bound)
    built: Message = message
    return built


def response_to_json(route: Route, response: Message) -> Any:
    payload = getattr(response, route.response_body) if route.response_body else response
    return message_to_json(payload)


def message_to_json(message: Message) -> Any:
    return json_format.MessageToDict(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
