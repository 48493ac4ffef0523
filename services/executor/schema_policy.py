"""Decide a batch's table columns: what the files hold, what the table holds, and the ingestion's policy.

Pure functions over schemas in Spark's JSON form (lists of field dicts), so every rule is testable without
Spark. The loader reads the files, asks `plan_columns` what the table must look like, applies the changes
(Iceberg schema evolution) and projects the rows onto the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.shared.spark_types import sql_type

Field = dict[str, Any]

TEXT_FORMATS = frozenset({"csv", "json"})
RESCUED_DATA = "_rescued_data"
CORRUPT_RECORD = "_corrupt_record"
# (table type, file type) pairs Iceberg can promote in place without rewriting data.
_PROMOTIONS = {("integer", "long"), ("float", "double")}
# (file type, table type) pairs a value can be cast along without loss.
_LOSSLESS = {
    ("byte", "short"),
    ("byte", "integer"),
    ("byte", "long"),
    ("short", "integer"),
    ("short", "long"),
    ("integer", "long"),
    ("float", "double"),
    ("integer", "double"),
    ("short", "double"),
    ("byte", "double"),
    ("date", "timestamp"),
}
METADATA_COLUMNS = (
    ("source_file", "string"),
    ("source_size", "long"),
    ("source_modified_at", "timestamp"),
    ("ingested_at", "timestamp"),
    ("run_id", "string"),
)


class BatchRefused(Exception):
    """The batch cannot be written as configured (a schema rule, a merge rule). Not a file problem: the run
    fails with this message and nothing is written."""


@dataclass(frozen=True)
class SchemaSettings:
    """The ingestion's schema policy, as the executor reads it from the run's copy of the configuration."""

    explicit_ddl: str = ""
    hints: dict[str, str] = field(default_factory=dict)
    evolution_mode: str = "add_new_columns"
    sample_files: int = 100
    sample_bytes: int = 64 * 1024 * 1024
    rescue_data: bool = True
    metadata_columns: bool = False
    metadata_prefix: str = "_"

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SchemaSettings:
        schema = config.get("schema", {})
        metadata = config.get("metadata_columns", {})
        columns = schema.get("columns", [])
        ddl = schema.get("ddl", "") or ", ".join(f"{_quote(c['name'])} {c['type']}" for c in columns)
        return cls(
            explicit_ddl=str(ddl),
            hints={str(k): str(v) for k, v in schema.get("hints", {}).items()},
            evolution_mode=str(schema.get("evolution_mode") or "add_new_columns"),
            sample_files=_integer(schema.get("sample_files", 100)),
            sample_bytes=_integer(schema.get("sample_bytes", 64 * 1024 * 1024)),
            rescue_data=bool(schema.get("rescue_data", True)),
            metadata_columns=bool(metadata.get("enabled", False)),
            metadata_prefix=str(metadata.get("prefix") or "_"),
        )

    def metadata_names(self) -> list[str]:
        return [self.metadata_prefix + name for name, _ in METADATA_COLUMNS] if self.metadata_columns else []

    def rescues(self, file_format: str) -> bool:
        """Whether rows carry _rescued_data: unparseable CSV/JSON values, or unknown columns in rescue mode."""
        return (self.rescue_data and file_format in TEXT_FORMATS) or self.evolution_mode == "rescue"


@dataclass(frozen=True)
class ColumnPlan:
    """The table's columns after this batch, and what happens to each file column."""

    table_fields: list[Field]
    new_columns: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    rescued_columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def table_json(self) -> dict[str, Any]:
        return {"type": "struct", "fields": self.table_fields}


def _integer(value: Any) -> int:
    # Through google.protobuf.Struct, int32 arrives as a float and int64 as a decimal string.
    return int(value) if isinstance(value, str) else int(float(value))


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def make_field(name: str, data_type: Any) -> Field:
    return {"name": name, "type": data_type, "nullable": True, "metadata": {}}


def _decimal(data_type: Any) -> tuple[int, int] | None:
    if isinstance(data_type, str) and data_type.startswith("decimal(") and data_type.endswith(")"):
        precision, scale = data_type[len("decimal(") : -1].split(",")
        return int(precision), int(scale)
    return None


def promotable(table_type: Any, file_type: Any) -> bool:
    """Whether Iceberg can widen the table's column to the file's type in place."""
    if not isinstance(table_type, str) or not isinstance(file_type, str):
        return False  # nested types are never widened in place
    if (table_type, file_type) in _PROMOTIONS:
        return True
    old, new = _decimal(table_type), _decimal(file_type)
    return old is not None and new is not None and new[1] == old[1] and new[0] > old[0]


def lossless_cast(file_type: Any, table_type: Any) -> bool:
    """Whether a file value of file_type fits the table's type exactly (no rounding, no overflow)."""
    if file_type == table_type:
        return True
    if not isinstance(table_type, str) or not isinstance(file_type, str):
        return False
    if table_type == "string":
        return True
    if (file_type, table_type) in _LOSSLESS:
        return True
    narrow, wide = _decimal(file_type), _decimal(table_type)
    return (
        narrow is not None and wide is not None and wide[1] >= narrow[1] and wide[0] - wide[1] >= narrow[0] - narrow[1]
    )


def system_names(settings: SchemaSettings) -> set[str]:
    """Columns the loader itself fills; never treated as file columns."""
    return {RESCUED_DATA, CORRUPT_RECORD, *settings.metadata_names()}


def plan_columns(
    *,
    table: list[Field] | None,
    explicit: list[Field] | None,
    files: list[Field],
    hints: dict[str, Any],
    settings: SchemaSettings,
    file_format: str,
) -> ColumnPlan:
    """The table's columns once this batch is written, or BatchRefused naming what breaks the policy.

    table: the existing table's fields (None: no table yet); explicit: the configured schema (None: infer);
    files: the fields the batch's files hold (types inferred); hints: column name → JSON type.
    """
    system = {n.lower() for n in system_names(settings)}
    hinted = {name.lower(): data_type for name, data_type in hints.items()}
    file_fields = [f for f in files if f["name"].lower() not in system]
    # Columns whose type the user chose (explicit schema, hints) for this batch: never widened by the files.
    configured: set[str] = set()
    if table is None:
        base = explicit if explicit is not None else file_fields
        current = [make_field(f["name"], hinted.get(f["name"].lower(), f["type"])) for f in base]
        configured = {f["name"].lower() for f in explicit or []} | {f["name"].lower() for f in base} & set(hinted)
        # With an inferred schema the files define the table: nothing is "new" on the first batch.
        checks_new = explicit is not None
    else:
        current = [dict(f) for f in table]
        checks_new = True
    by_name = {f["name"].lower(): f for f in current}

    new = [f for f in file_fields if f["name"].lower() not in by_name] if checks_new else []
    plan_new: list[str] = []
    rescued: list[str] = []
    ignored: list[str] = []
    mode = settings.evolution_mode
    if new and mode == "fail_on_new_columns":
        names = ", ".join(f["name"] for f in new)
        raise BatchRefused(
            f"the files have columns the table does not: {names}; schema.evolution_mode is fail_on_new_columns, "
            "so nothing was written. Add the columns to the table, or change schema.evolution_mode"
        )
    for new_field in new:
        if mode == "add_new_columns":
            current.append(make_field(new_field["name"], hinted.get(new_field["name"].lower(), new_field["type"])))
            plan_new.append(new_field["name"])
            if new_field["name"].lower() in hinted:
                configured.add(new_field["name"].lower())
        elif mode == "rescue":
            rescued.append(new_field["name"])
        else:
            ignored.append(new_field["name"])

    by_name = {f["name"].lower(): f for f in current}
    widened = _reconcile_types(
        by_name, file_fields, text=file_format in TEXT_FORMATS, configured=configured, mode=settings.evolution_mode
    )
    present = {f["name"].lower() for f in current}
    extra: list[tuple[str, Any]] = []
    if any(f["name"] == CORRUPT_RECORD for f in files):
        extra.append((CORRUPT_RECORD, "string"))
    if settings.rescues(file_format):
        extra.append((RESCUED_DATA, "string"))
    if settings.metadata_columns:
        extra += [(settings.metadata_prefix + name, data_type) for name, data_type in METADATA_COLUMNS]
    current += [make_field(name, data_type) for name, data_type in extra if name.lower() not in present]
    return ColumnPlan(current, plan_new, widened, rescued, ignored)


def _reconcile_types(
    by_name: dict[str, Field], file_fields: list[Field], *, text: bool, configured: set[str], mode: str
) -> list[str]:
    """Widen table columns where the files need it and Iceberg allows it; refuse unsafe changes.

    Text formats (CSV, JSON) never fail here: a value that does not parse into the column's type is kept in
    _rescued_data. Typed formats (Parquet, ORC, Avro) carry no text to rescue, so an unsafe change fails.
    A configured type (explicit schema, hint) is kept as it is: the files never widen it.
    """
    widened = []
    for file_field in file_fields:
        table_field = by_name.get(file_field["name"].lower())
        if table_field is None or table_field["type"] == file_field["type"]:
            continue
        table_type, file_type = table_field["type"], file_field["type"]
        name = table_field["name"]
        if text:
            if isinstance(table_type, dict) and isinstance(file_type, dict):
                _grow_nested(table_field, file_type, mode)
            elif name.lower() not in configured and promotable(table_type, file_type):
                table_field["type"] = file_type
                widened.append(name)
            continue
        if isinstance(table_type, dict) or isinstance(file_type, dict):
            raise BatchRefused(
                f"column {name!r}: the files hold {sql_type(file_type)} but the table holds {sql_type(table_type)};"
                " nested types are not changed automatically. Nothing was written"
            )
        if name.lower() in configured:
            if not lossless_cast(file_type, table_type):
                raise BatchRefused(
                    f"column {name!r}: the files hold {sql_type(file_type)}, which does not fit the configured type"
                    f" {sql_type(table_type)}. Nothing was written"
                )
            continue
        if promotable(table_type, file_type):
            table_field["type"] = file_type
            widened.append(table_field["name"])
        elif not lossless_cast(file_type, table_type):
            raise BatchRefused(
                f"column {name!r}: the files hold {sql_type(file_type)} but the table holds "
                f"{sql_type(table_type)}; only int→bigint, float→double and wider decimals are applied. "
                "Nothing was written"
            )
    return widened


def nested_union(table_type: Any, file_type: Any) -> Any:
    """The table's nested type grown by the fields the files' type adds (at any depth); everything the table
    already has keeps its type. Other shapes (a struct where the table has an array) keep the table's type."""
    if not isinstance(table_type, dict) or not isinstance(file_type, dict) or table_type["type"] != file_type["type"]:
        return table_type
    kind = table_type["type"]
    if kind == "array":
        return {**table_type, "elementType": nested_union(table_type["elementType"], file_type["elementType"])}
    if kind == "map":
        return {**table_type, "valueType": nested_union(table_type["valueType"], file_type["valueType"])}
    known = {f["name"].lower() for f in table_type["fields"]}
    incoming = {f["name"].lower(): f for f in file_type["fields"]}
    fields = [
        {**f, "type": nested_union(f["type"], incoming[f["name"].lower()]["type"])}
        if f["name"].lower() in incoming
        else f
        for f in table_type["fields"]
    ]
    fields += [make_field(f["name"], f["type"]) for f in file_type["fields"] if f["name"].lower() not in known]
    return {**table_type, "fields": fields}


def _grow_nested(table_field: Field, file_type: Any, mode: str) -> None:
    """A JSON object that gained fields: add them (add_new_columns), refuse (fail_on_new_columns), or drop
    them (rescue, none: only top-level columns are rescued)."""
    grown = nested_union(table_field["type"], file_type)
    if grown == table_field["type"]:
        return
    if mode == "add_new_columns":
        table_field["type"] = grown
    elif mode == "fail_on_new_columns":
        raise BatchRefused(
            f"column {table_field['name']!r}: the files have nested fields the table does not"
            f" ({sql_type(grown)}); schema.evolution_mode is fail_on_new_columns, so nothing was written"
        )


def choose_sample(sizes: list[int], max_files: int, max_bytes: int) -> int:
    """How many of the first files to read for inference: at most max_files and max_bytes, at least one."""
    count = total = 0
    for size in sizes[:max_files]:
        if count and total + size > max_bytes:
            break
        count += 1
        total += size
    return max(count, 1) if sizes else 0


def raw_json_type(data_type: Any) -> Any:
    """The type a text value is first read as: top-level primitives as strings, so a value that does not
    parse into its column's type can be rescued instead of read as null."""
    return data_type if isinstance(data_type, dict) else "string"
