"""Spark SQL types in Spark's JSON form, and Iceberg partition transforms: shared by control and executor.

A Spark schema's JSON is {"type": "struct", "fields": [{"name", "type", "nullable", "metadata"}, ...]}; a
field's type is a name ("long", "decimal(10,2)") or a nested object (array, map, struct).
"""

from __future__ import annotations

import json
import re
from typing import Any

_SQL_NAMES = {"long": "bigint", "integer": "int", "short": "smallint", "byte": "tinyint"}
_COLUMN_REF = r"([A-Za-z_][A-Za-z0-9_]*|`(?:[^`]|``)+`)"
_TRANSFORMS = {
    "identity": re.compile(rf"^{_COLUMN_REF}$"),
    "time": re.compile(rf"^(years|months|days|hours)\(\s*{_COLUMN_REF}\s*\)$", re.IGNORECASE),
    "width": re.compile(rf"^(bucket|truncate)\(\s*(\d{{1,6}})\s*,\s*{_COLUMN_REF}\s*\)$", re.IGNORECASE),
}


def quote(name: str) -> str:
    """A column name as a Spark SQL identifier: backticks, with backticks inside doubled."""
    return "`" + name.replace("`", "``") + "`"


def sql_type(data_type: Any) -> str:
    """The Spark SQL spelling of a JSON type: "long" → "bigint", {"type": "array", ...} → "array<...>"."""
    if isinstance(data_type, str):
        return _SQL_NAMES.get(data_type, data_type)
    kind = data_type.get("type") if isinstance(data_type, dict) else None
    if kind == "array":
        return f"array<{sql_type(data_type['elementType'])}>"
    if kind == "map":
        return f"map<{sql_type(data_type['keyType'])},{sql_type(data_type['valueType'])}>"
    if kind == "struct":
        return "struct<" + ",".join(f"{quote(f['name'])}:{sql_type(f['type'])}" for f in data_type["fields"]) + ">"
    raise ValueError(f"unknown Spark type {data_type!r}")


def schema_columns(schema_json: str) -> list[tuple[str, str]]:
    """(name, SQL type) of each top-level column of a schema in Spark's JSON form."""
    return [(f["name"], sql_type(f["type"])) for f in json.loads(schema_json).get("fields", [])]


def parse_partition(transform: str) -> tuple[str, int | None, str] | None:
    """(function, width, column) of a partition transform, e.g. ("bucket", 16, "id"); None when invalid.

    function is "identity" for a bare column; width is set only for bucket and truncate.
    """
    text = transform.strip()
    for kind, pattern in _TRANSFORMS.items():
        match = pattern.match(text)
        if match is None:
            continue
        column = match.group(match.lastindex or 1)
        column = column[1:-1].replace("``", "`") if column.startswith("`") else column
        if kind == "identity":
            return "identity", None, column
        if kind == "time":
            return match.group(1).lower(), None, column
        width = int(match.group(2))
        return (match.group(1).lower(), width, column) if width >= 1 else None
    return None


def partition_sql(transform: str) -> str:
    """A valid transform in Spark SQL's PARTITIONED BY form, with the column quoted."""
    parsed = parse_partition(transform)
    if parsed is None:
        raise ValueError(f"{transform!r} is not a partition transform")
    function, width, column = parsed
    if function == "identity":
        return quote(column)
    return f"{function}({width}, {quote(column)})" if width is not None else f"{function}({quote(column)})"
