"""Refuse NUL characters in any string of a gRPC request, naming the field.

PostgreSQL text cannot store NUL, so without this a NUL sent straight over gRPC (the gateway has its own
check for JSON) would surface as an internal error instead of a 400-class answer.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from services.shared.errors import FieldViolation

REASON = "must not contain NUL characters"


def nul_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    found: list[FieldViolation] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                found += _value_violations(f"{path}.{key}", key, None)
                found += _value_violations(f"{path}.{key}", item, field.message_type.fields_by_name["value"])
        elif field.is_repeated:
            for index, item in enumerate(value):
                found += _value_violations(f"{path}[{index}]", item, field)
        else:
            found += _value_violations(path, value, field)
    return found


def _value_violations(path: str, value: object, field: FieldDescriptor | None) -> list[FieldViolation]:
    if isinstance(value, str):
        return [FieldViolation(path, REASON)] if "\x00" in value else []
    if isinstance(value, Message) and field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
        return nul_violations(value, f"{path}.")
    return []
