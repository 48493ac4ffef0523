"""The SELECT that turns a batch as read into rows of the table: casts, rescued data, metadata columns.

Built as Spark SQL text (no pyspark import): one expression per table column, in the table's order.
"""

from __future__ import annotations

from typing import Any

from services.executor.schema_policy import (
    METADATA_COLUMNS,
    RESCUED_DATA,
    TEXT_FORMATS,
    ColumnPlan,
    SchemaSettings,
)
from services.shared.spark_types import quote, sql_type

# The raw frame carries Spark's hidden _metadata struct (file path, size, modification time) under this name.
META = "__autoloader_meta"
# _metadata.file_path is a URI with Hadoop's scheme (s3a:, file:/) and percent-encoding; report the source's
# own form. '+' is protected because url_decode reads it as a space.
SOURCE_PATH = (
    f"regexp_replace(regexp_replace(url_decode(replace({META}.file_path, '+', '%2B')),"
    " '^s3a://', 's3://'), '^file:/+', 'file:///')"
)
RESCUED_FILE_KEY = "_file_path"


def literal(text: str) -> str:
    """A Spark SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _metadata_expression(suffix: str, run_id: str) -> str:
    return {
        "source_file": SOURCE_PATH,
        "source_size": f"{META}.file_size",
        "source_modified_at": f"{META}.file_modification_time",
        "ingested_at": "current_timestamp()",
        "run_id": literal(run_id),
    }[suffix]


def _as_text(column: str, data_type: Any) -> str:
    if isinstance(data_type, dict):
        return f"to_json({column})"
    return column if data_type == "string" else f"CAST({column} AS STRING)"


def select_expressions(
    raw_fields: list[tuple[str, Any]],
    plan: ColumnPlan,
    *,
    settings: SchemaSettings,
    file_format: str,
    run_id: str,
) -> list[str]:
    """One SQL expression per table column, aliased to the column's name, in the table's order."""
    raw = {name.lower(): (name, data_type) for name, data_type in raw_fields}
    text = file_format in TEXT_FORMATS
    metadata = {settings.metadata_prefix + suffix: suffix for suffix, _ in METADATA_COLUMNS}
    rescue_checks: list[tuple[str, str, str]] = []  # (map key, condition, value)
    expressions = []
    for table_field in plan.table_fields:
        name, table_type = table_field["name"], table_field["type"]
        target = sql_type(table_type)
        if settings.metadata_columns and name in metadata:
            expression = _metadata_expression(metadata[name], run_id)
        elif name == RESCUED_DATA:
            expression = ""  # filled in below, once every check is known
        elif name.lower() in raw:
            raw_name, raw_type = raw[name.lower()]
            column = quote(raw_name)
            nested = isinstance(raw_type, dict) or isinstance(table_type, dict)
            if raw_type == table_type:
                expression = column
            elif text and nested and table_type == "string":
                expression = f"to_json({column})"  # a JSON object or array kept as its JSON text
            elif text and nested:
                # A JSON value of another shape than its column (an object for a number, text for an array):
                # nothing to cast it to, so the column is null and the value is rescued.
                expression = f"CAST(NULL AS {target})"
                if settings.rescues(file_format):
                    rescue_checks.append((raw_name, f"({column} IS NOT NULL)", _as_text(column, raw_type)))
            elif text and raw_type == "string":
                expression = f"try_cast({column} AS {target})"
                if settings.rescues(file_format):
                    rescue_checks.append((raw_name, f"({column} IS NOT NULL AND {expression} IS NULL)", column))
            else:
                expression = f"CAST({column} AS {target})"
        else:
            expression = f"CAST(NULL AS {target})"
        expressions.append((name, expression))
    for unknown in plan.rescued_columns:
        raw_name, raw_type = raw[unknown.lower()]
        column = quote(raw_name)
        rescue_checks.append((raw_name, f"({column} IS NOT NULL)", _as_text(column, raw_type)))
    return [
        f"{_rescued_expression(rescue_checks) if name == RESCUED_DATA else expression} AS {quote(name)}"
        for name, expression in expressions
    ]


def _rescued_expression(checks: list[tuple[str, str, str]]) -> str:
    """A JSON object of the values that could not be kept in their columns, with the file they came from;
    null when the row lost nothing."""
    if not checks:
        return "CAST(NULL AS STRING)"
    entries = [f"{literal(key)}, CASE WHEN {condition} THEN {value} END" for key, condition, value in checks]
    entries.append(f"{literal(RESCUED_FILE_KEY)}, {SOURCE_PATH}")
    any_lost = " OR ".join(condition for _, condition, _ in checks)
    # to_json leaves out null fields, so the object names only what was lost.
    return f"CASE WHEN {any_lost} THEN to_json(named_struct({', '.join(entries)})) END"
