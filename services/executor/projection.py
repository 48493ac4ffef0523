"""The SELECT that turns a batch as read into rows of the table: casts, rescued data, metadata columns.

Built as Spark SQL text (no pyspark import): one expression per table column, in the table's order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from services.executor.schema_policy import (
    CORRUPT_RECORD,
    METADATA_COLUMNS,
    RESCUED_DATA,
    TEXT_FORMATS,
    ColumnPlan,
    SchemaSettings,
)
from services.shared.spark_types import quote, sql_type

# The raw frame carries Spark's hidden _metadata struct (file path, size, modification time) under this name.
META = "__autoloader_meta"


def _source_form(hadoop_uri: str) -> str:
    # A file's URI with Hadoop's scheme (s3a:, file:/) and percent-encoding, in the source's own form.
    # '+' is protected because url_decode reads it as a space.
    return (
        f"regexp_replace(regexp_replace(url_decode(replace({hadoop_uri}, '+', '%2B')),"
        " '^s3a://', 's3://'), '^file:/+', 'file:///')"
    )


SOURCE_PATH = _source_form(f"{META}.file_path")
# The same path without the _metadata column (which costs a copy of every row): input_file_name() is only
# evaluated where it is used, so a path needed on rare rows (rescued values) costs nothing on the others.
INPUT_FILE_PATH = _source_form("input_file_name()")
RESCUED_FILE_KEY = "_file_path"
# Column types the CSV reader parses the way try_cast parses text whenever it accepts the value; it rejects
# some values try_cast takes (' 5', '5.0' for an integer, 'yes' for a boolean), and those rows are read again.
PARSED_WHILE_READING = frozenset({"byte", "short", "integer", "long", "float", "double", "boolean"})


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
    columns = _column_expressions(raw_fields, plan, settings=settings, file_format=file_format, run_id=run_id)
    return [f"{expression} AS {quote(name)}" for name, expression in columns]


@dataclass(frozen=True)
class ParsedColumns:
    """CSV columns the reader parsed into their table types (see PARSED_WHILE_READING). A row holding a value
    it rejected has _corrupt_record set; that row's values come from `reparsed`, its line parsed again as text,
    so it ends exactly as when every column is read as text and cast."""

    types: dict[str, Any]  # raw column name -> the type it was read as
    reparsed: str  # SQL: a struct of the row's fields as text
    with_metadata: bool  # whether the frame carries the _metadata column


def parsed_types(raw_fields: list[tuple[str, Any]], plan: ColumnPlan, settings: SchemaSettings) -> dict[str, Any]:
    """The text columns the CSV reader can parse into their table types itself."""
    table_types = {f["name"].lower(): f["type"] for f in plan.table_fields}
    metadata = set(settings.metadata_names())
    return {
        name: table_types[name.lower()]
        for name, raw_type in raw_fields
        if raw_type == "string" and name not in metadata and table_types.get(name.lower()) in PARSED_WHILE_READING
    }


def parsed_select_expressions(
    raw_fields: list[tuple[str, Any]],
    parsed: ParsedColumns,
    plan: ColumnPlan,
    *,
    settings: SchemaSettings,
    run_id: str,
) -> list[str]:
    """select_expressions for a CSV frame read with `parsed` columns typed: a row the reader accepted needs no
    cast (and _corrupt_record is null on it); a row with _corrupt_record set is projected from its text."""
    source_path = SOURCE_PATH if parsed.with_metadata else INPUT_FILE_PATH
    accepted = [(name, parsed.types.get(name, data_type)) for name, data_type in raw_fields if name != CORRUPT_RECORD]
    good = _column_expressions(
        accepted, plan, settings=settings, file_format="csv", run_id=run_id, source_path=source_path
    )
    bad = _column_expressions(
        raw_fields,
        plan,
        settings=settings,
        file_format="csv",
        run_id=run_id,
        source_path=source_path,
        column_of=lambda name: f"{parsed.reparsed}.{quote(name)}",
    )
    corrupt = quote(CORRUPT_RECORD)
    expressions = []
    for (name, good_value), (_, bad_value) in zip(good, bad, strict=True):
        value = good_value
        if good_value != bad_value:
            value = f"CASE WHEN {corrupt} IS NULL THEN {good_value} ELSE {bad_value} END"
        expressions.append(f"{value} AS {quote(name)}")
    return expressions


def direct_columns(
    raw_fields: list[tuple[str, Any]], types: dict[str, Any], plan: ColumnPlan, *, settings: SchemaSettings, run_id: str
) -> list[str] | None:
    """The columns to write a CSV frame read with `types` (see parsed_types) as it is, without a projection (which costs
    a copy of every row), provided the reader rejects no row; None when an accepted row needs an expression in
    some column, or when a column of the files would not be written.

    The table columns left out are null on every accepted row; the table fills them in itself."""
    accepted = [(name, types.get(name, data_type)) for name, data_type in raw_fields if name != CORRUPT_RECORD]
    good = _column_expressions(
        accepted, plan, settings=settings, file_format="csv", run_id=run_id, source_path=INPUT_FILE_PATH
    )
    columns = []
    for name, expression in good:
        if expression == quote(name):
            columns.append(name)
        elif not expression.startswith("CAST(NULL AS "):
            return None
    # Every column is read: a reader that reads only some checks only their fields' count (Spark's CSV pruning).
    return columns if sorted(columns) == sorted(name for name, _ in accepted) else None


def _column_expressions(
    raw_fields: list[tuple[str, Any]],
    plan: ColumnPlan,
    *,
    settings: SchemaSettings,
    file_format: str,
    run_id: str,
    source_path: str = SOURCE_PATH,
    column_of: Callable[[str], str] = quote,
) -> list[tuple[str, str]]:
    """(column, SQL expression) per table column, in the table's order; `column_of` names a raw column."""
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
            column = column_of(raw_name)
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
        if unknown.lower() not in raw:
            continue  # _corrupt_record on a row the CSV reader accepted: null
        raw_name, raw_type = raw[unknown.lower()]
        column = column_of(raw_name)
        rescue_checks.append((raw_name, f"({column} IS NOT NULL)", _as_text(column, raw_type)))
    return [
        (name, _rescued_expression(rescue_checks, source_path) if name == RESCUED_DATA else expression)
        for name, expression in expressions
    ]


def _rescued_expression(checks: list[tuple[str, str, str]], source_path: str) -> str:
    """A JSON object of the values that could not be kept in their columns, with the file they came from;
    null when the row lost nothing."""
    if not checks:
        return "CAST(NULL AS STRING)"
    entries = [f"{literal(key)}, CASE WHEN {condition} THEN {value} END" for key, condition, value in checks]
    entries.append(f"{literal(RESCUED_FILE_KEY)}, {source_path}")
    any_lost = " OR ".join(condition for _, condition, _ in checks)
    # to_json leaves out null fields, so the object names only what was lost.
    return f"CASE WHEN {any_lost} THEN to_json(named_struct({', '.join(entries)})) END"
