"""The executor's schema policy (which columns a batch gives the table, and with which types) and the shared
Spark type helpers. Pure functions over Spark's JSON form of schemas: no Spark, no services."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.executor.schema_policy import (
    CORRUPT_RECORD,
    RESCUED_DATA,
    BatchRefused,
    ColumnPlan,
    Field,
    SchemaSettings,
    choose_sample,
    lossless_cast,
    make_field,
    nested_union,
    plan_columns,
    promotable,
    raw_json_type,
)
from services.shared.spark_types import parse_partition, partition_sql, quote, schema_columns, sql_type

ARRAY_OF_STRING = {"type": "array", "elementType": "string", "containsNull": True}
METADATA_NAMES = ["_source_file", "_source_size", "_source_modified_at", "_ingested_at", "_run_id"]


def fields(*pairs: tuple[str, Any]) -> list[Field]:
    return [make_field(name, data_type) for name, data_type in pairs]


def names(plan: ColumnPlan) -> list[str]:
    return [f["name"] for f in plan.table_fields]


def types(plan: ColumnPlan) -> dict[str, Any]:
    return {f["name"]: f["type"] for f in plan.table_fields}


def plan(
    *,
    files: list[Field],
    table: list[Field] | None = None,
    explicit: list[Field] | None = None,
    hints: dict[str, Any] | None = None,
    file_format: str = "parquet",
    **settings: Any,
) -> ColumnPlan:
    return plan_columns(
        table=table,
        explicit=explicit,
        files=files,
        hints=hints or {},
        settings=SchemaSettings(**settings),
        file_format=file_format,
    )


# ------------------------------------------------------------------------------ SchemaSettings.from_config


def test_from_config_without_schema_or_metadata_uses_defaults() -> None:
    assert SchemaSettings.from_config({}) == SchemaSettings()
    assert SchemaSettings.from_config({"schema": {}, "metadata_columns": {}}) == SchemaSettings()


def test_from_config_defaults_are_the_documented_ones() -> None:
    settings = SchemaSettings.from_config({"ingestion_id": "x"})
    assert settings.explicit_ddl == ""
    assert settings.hints == {}
    assert settings.evolution_mode == "add_new_columns"
    assert settings.sample_files == 100
    assert settings.sample_bytes == 64 * 1024 * 1024
    assert settings.rescue_data is True
    assert settings.metadata_columns is False
    assert settings.metadata_prefix == "_"


@pytest.mark.parametrize(
    ("sample_files", "sample_bytes"),
    [
        pytest.param(7.0, 2048.0, id="floats-from-struct"),
        pytest.param("7", "2048", id="int64-as-strings"),
        pytest.param(7, 2048, id="ints"),
    ],
)
def test_from_config_reads_numbers_in_any_json_form(sample_files: Any, sample_bytes: Any) -> None:
    settings = SchemaSettings.from_config({"schema": {"sample_files": sample_files, "sample_bytes": sample_bytes}})
    assert settings.sample_files == 7
    assert settings.sample_bytes == 2048
    assert isinstance(settings.sample_files, int)
    assert isinstance(settings.sample_bytes, int)


def test_from_config_turns_columns_into_quoted_ddl() -> None:
    config = {
        "schema": {
            "columns": [
                {"name": "id", "type": "bigint"},
                {"name": "first name", "type": "string"},
                {"name": "odd`name", "type": "decimal(10,2)"},
            ]
        }
    }
    assert (
        SchemaSettings.from_config(config).explicit_ddl == "`id` bigint, `first name` string, `odd``name` decimal(10,2)"
    )


def test_from_config_prefers_ddl_over_columns() -> None:
    config = {"schema": {"ddl": "id BIGINT", "columns": [{"name": "other", "type": "string"}]}}
    assert SchemaSettings.from_config(config).explicit_ddl == "id BIGINT"


def test_from_config_empty_ddl_falls_back_to_columns() -> None:
    config = {"schema": {"ddl": "", "columns": [{"name": "a", "type": "int"}]}}
    assert SchemaSettings.from_config(config).explicit_ddl == "`a` int"


def test_from_config_reads_policy_and_metadata() -> None:
    config = {
        "schema": {
            "hints": {"amount": "double", "Tags": "array<string>"},
            "evolution_mode": "rescue",
            "rescue_data": False,
        },
        "metadata_columns": {"enabled": True, "prefix": "meta_"},
    }
    settings = SchemaSettings.from_config(config)
    assert settings.hints == {"amount": "double", "Tags": "array<string>"}
    assert settings.evolution_mode == "rescue"
    assert settings.rescue_data is False
    assert settings.metadata_columns is True
    assert settings.metadata_prefix == "meta_"
    assert settings.metadata_names() == [
        "meta_source_file",
        "meta_source_size",
        "meta_source_modified_at",
        "meta_ingested_at",
        "meta_run_id",
    ]


def test_from_config_empty_mode_and_prefix_fall_back_to_defaults() -> None:
    settings = SchemaSettings.from_config(
        {"schema": {"evolution_mode": ""}, "metadata_columns": {"enabled": True, "prefix": ""}}
    )
    assert settings.evolution_mode == "add_new_columns"
    assert settings.metadata_prefix == "_"
    assert settings.metadata_names() == METADATA_NAMES


def test_metadata_names_empty_when_disabled() -> None:
    assert SchemaSettings(metadata_prefix="x_").metadata_names() == []


@pytest.mark.parametrize(
    ("rescue_data", "mode", "file_format", "expected"),
    [
        (True, "add_new_columns", "csv", True),
        (True, "add_new_columns", "json", True),
        (True, "add_new_columns", "parquet", False),
        (False, "add_new_columns", "csv", False),
        (False, "rescue", "csv", True),
        (False, "rescue", "parquet", True),
        (True, "none", "avro", False),
    ],
)
def test_rescues(rescue_data: bool, mode: str, file_format: str, expected: bool) -> None:
    settings = SchemaSettings(rescue_data=rescue_data, evolution_mode=mode)
    assert settings.rescues(file_format) is expected


# ------------------------------------------------------------------------------ plan_columns: evolution


TABLE = fields(("id", "long"), ("name", "string"))


def test_add_new_columns_appends_new_file_columns_to_existing_table() -> None:
    result = plan(
        table=TABLE, files=fields(("id", "long"), ("email", "string"), ("name", "string"), ("age", "integer"))
    )
    assert names(result) == ["id", "name", "email", "age"]
    assert types(result)["age"] == "integer"
    assert result.new_columns == ["email", "age"]
    assert result.rescued_columns == []
    assert result.ignored_columns == []


def test_fail_on_new_columns_refuses_naming_every_new_column() -> None:
    files = fields(("id", "long"), ("email", "string"), ("age", "integer"))
    with pytest.raises(BatchRefused) as refused:
        plan(table=TABLE, files=files, evolution_mode="fail_on_new_columns")
    message = str(refused.value)
    assert "email, age" in message
    assert "fail_on_new_columns" in message


def test_fail_on_new_columns_accepts_files_without_new_columns() -> None:
    result = plan(table=TABLE, files=fields(("ID", "long")), evolution_mode="fail_on_new_columns")
    assert result.table_fields == TABLE
    assert result.new_columns == []


def test_rescue_mode_keeps_table_and_lists_new_columns_as_rescued() -> None:
    result = plan(table=TABLE, files=fields(("id", "long"), ("email", "string")), evolution_mode="rescue")
    assert names(result) == ["id", "name", RESCUED_DATA]
    assert result.rescued_columns == ["email"]
    assert result.new_columns == []
    assert result.ignored_columns == []


def test_none_mode_keeps_table_and_lists_new_columns_as_ignored() -> None:
    result = plan(table=TABLE, files=fields(("id", "long"), ("email", "string")), evolution_mode="none")
    assert result.table_fields == TABLE
    assert result.ignored_columns == ["email"]
    assert result.new_columns == []
    assert result.rescued_columns == []


@pytest.mark.parametrize("mode", ["add_new_columns", "fail_on_new_columns", "rescue", "none"])
def test_columns_missing_from_files_stay_in_existing_table(mode: str) -> None:
    table = fields(("id", "long"), ("name", "string"), ("score", "double"))
    result = plan(table=table, files=fields(("name", "string")), evolution_mode=mode)
    assert names(result)[:3] == ["id", "name", "score"]
    assert result.new_columns == []
    assert result.rescued_columns == []
    assert result.ignored_columns == []


def test_plan_does_not_mutate_the_table_it_was_given() -> None:
    table = fields(("n", "integer"))
    snapshot = json.dumps(table)
    result = plan(table=table, files=fields(("n", "long"), ("m", "string")))
    assert types(result)["n"] == "long"
    assert json.dumps(table) == snapshot


def test_inferred_new_table_is_the_files_and_nothing_is_new() -> None:
    files = fields(("id", "long"), ("name", "string"))
    result = plan(files=files, evolution_mode="fail_on_new_columns")
    assert result.table_fields == files
    assert result.new_columns == []
    assert result.rescued_columns == []
    assert result.ignored_columns == []


EXPLICIT = fields(("id", "long"), ("name", "string"))
FILES_WITH_EXTRA = fields(("id", "long"), ("extra", "string"))


def test_new_table_explicit_add_new_columns_appends_after_explicit_columns() -> None:
    result = plan(explicit=EXPLICIT, files=FILES_WITH_EXTRA)
    assert names(result) == ["id", "name", "extra"]
    assert result.new_columns == ["extra"]


def test_new_table_explicit_fail_on_new_columns_refuses() -> None:
    with pytest.raises(BatchRefused, match="extra"):
        plan(explicit=EXPLICIT, files=FILES_WITH_EXTRA, evolution_mode="fail_on_new_columns")


def test_new_table_explicit_rescue_mode_rescues_extra() -> None:
    result = plan(explicit=EXPLICIT, files=FILES_WITH_EXTRA, evolution_mode="rescue")
    assert names(result) == ["id", "name", RESCUED_DATA]
    assert result.rescued_columns == ["extra"]
    assert result.new_columns == []


def test_new_table_explicit_none_mode_ignores_extra() -> None:
    result = plan(explicit=EXPLICIT, files=FILES_WITH_EXTRA, evolution_mode="none")
    assert names(result) == ["id", "name"]
    assert result.ignored_columns == ["extra"]


@pytest.mark.parametrize("mode", ["add_new_columns", "fail_on_new_columns", "rescue", "none"])
def test_new_table_explicit_columns_missing_from_files_are_kept(mode: str) -> None:
    result = plan(explicit=EXPLICIT, files=fields(("id", "long")), evolution_mode=mode)
    assert names(result)[:2] == ["id", "name"]
    assert types(result)["name"] == "string"


def test_new_table_explicit_fields_are_normalised_to_nullable() -> None:
    explicit = [{"name": "id", "type": "long", "nullable": False, "metadata": {"comment": "x"}}]
    result = plan(explicit=explicit, files=fields(("id", "long")))
    assert result.table_fields == [make_field("id", "long")]


# ------------------------------------------------------------------------------ plan_columns: hints


def test_hint_overrides_inferred_type_on_new_table() -> None:
    result = plan(files=fields(("amount", "string"), ("tags", "string")), hints={"Amount": "double"}, file_format="csv")
    assert types(result)["amount"] == "double"
    assert types(result)["tags"] == "string"


def test_hint_overrides_explicit_type_on_new_table() -> None:
    result = plan(explicit=fields(("id", "long")), files=fields(("id", "long")), hints={"ID": "string"})
    assert result.table_fields[0] == make_field("id", "string")


def test_hint_applies_to_newly_added_column() -> None:
    files = fields(("id", "long"), ("Tags", "string"))
    result = plan(table=TABLE, files=files, hints={"tags": ARRAY_OF_STRING}, file_format="json")
    assert result.table_fields[-2:] == [make_field("Tags", ARRAY_OF_STRING), make_field(RESCUED_DATA, "string")]
    assert result.new_columns == ["Tags"]


def test_hint_that_the_typed_files_do_not_fit_is_refused() -> None:
    files = fields(("id", "long"), ("Tags", "string"))
    with pytest.raises(BatchRefused, match="column 'Tags': the files hold string"):
        plan(table=TABLE, files=files, hints={"tags": ARRAY_OF_STRING}, file_format="parquet")


def test_hint_does_not_change_existing_table_column() -> None:
    result = plan(table=TABLE, files=fields(("id", "long")), hints={"id": "string"})
    assert types(result)["id"] == "long"


@pytest.mark.parametrize("source", ["hint", "explicit"])
def test_configured_type_is_kept_on_new_table_for_text_formats(source: str) -> None:
    files = fields(("qty", "long"))
    if source == "hint":
        result = plan(files=files, hints={"qty": "integer"}, file_format="json")
    else:
        result = plan(explicit=fields(("qty", "integer")), files=files, file_format="json")
    assert types(result)["qty"] == "integer"
    assert result.widened == []


# ------------------------------------------------------------------------------ plan_columns: case


def test_names_match_case_insensitively_and_keep_table_spelling() -> None:
    table = fields(("ID", "long"), ("Name", "string"))
    result = plan(table=table, files=fields(("id", "long"), ("NAME", "string"), ("Email", "string")))
    assert names(result) == ["ID", "Name", "Email"]
    assert result.new_columns == ["Email"]


def test_explicit_names_match_files_case_insensitively() -> None:
    result = plan(explicit=fields(("Id", "long")), files=fields(("ID", "long")), evolution_mode="fail_on_new_columns")
    assert names(result) == ["Id"]


def test_widening_matches_case_insensitively() -> None:
    result = plan(table=fields(("Qty", "integer")), files=fields(("qty", "long")))
    assert result.table_fields == [make_field("Qty", "long")]
    assert result.widened == ["Qty"]


# ------------------------------------------------------------------------------ plan_columns: types


@pytest.mark.parametrize("file_format", ["parquet", "orc", "avro", "csv", "json"])
def test_int_column_widened_to_long(file_format: str) -> None:
    result = plan(table=fields(("n", "integer")), files=fields(("n", "long")), file_format=file_format)
    assert types(result)["n"] == "long"
    assert result.widened == ["n"]


def test_float_column_widened_to_double() -> None:
    result = plan(table=fields(("x", "float")), files=fields(("x", "double")))
    assert types(result)["x"] == "double"
    assert result.widened == ["x"]


def test_decimal_precision_increase_widens_the_table() -> None:
    result = plan(table=fields(("p", "decimal(10,2)")), files=fields(("p", "decimal(12,2)")))
    assert types(result)["p"] == "decimal(12,2)"
    assert result.widened == ["p"]


@pytest.mark.parametrize(
    ("table_type", "file_type"),
    [
        pytest.param("long", "integer", id="int-file-long-table"),
        pytest.param("long", "short", id="short-file-long-table"),
        pytest.param("double", "integer", id="int-file-double-table"),
        pytest.param("string", "timestamp", id="timestamp-file-string-table"),
        pytest.param("string", "long", id="long-file-string-table"),
        pytest.param("timestamp", "date", id="date-file-timestamp-table"),
        pytest.param("decimal(12,4)", "decimal(10,2)", id="decimal-fits"),
        pytest.param("decimal(12,2)", "decimal(10,2)", id="narrower-decimal-file-not-narrowing-table"),
    ],
)
def test_typed_format_keeps_table_type_for_lossless_cast(table_type: str, file_type: str) -> None:
    result = plan(table=fields(("c", table_type)), files=fields(("c", file_type)), file_format="parquet")
    assert types(result)["c"] == table_type
    assert result.widened == []


@pytest.mark.parametrize(
    ("table_type", "file_type"),
    [
        pytest.param("long", "string", id="string-file-bigint-table"),
        pytest.param("integer", "double", id="double-file-int-table"),
        pytest.param("double", "long", id="long-file-double-table"),
        pytest.param("decimal(10,2)", "decimal(10,3)", id="decimal-scale-change"),
        pytest.param("decimal(10,2)", "decimal(12,3)", id="decimal-precision-and-scale"),
        pytest.param("long", "timestamp", id="timestamp-file-bigint-table"),
    ],
)
@pytest.mark.parametrize("file_format", ["parquet", "orc", "avro"])
def test_typed_format_refuses_unsafe_type_change(table_type: str, file_type: str, file_format: str) -> None:
    with pytest.raises(BatchRefused) as refused:
        plan(table=fields(("c", table_type)), files=fields(("c", file_type)), file_format=file_format)
    assert "'c'" in str(refused.value)


def test_refusal_names_types_in_sql_spelling() -> None:
    with pytest.raises(BatchRefused) as refused:
        plan(table=fields(("amount", "long")), files=fields(("amount", "string")))
    assert "the files hold string but the table holds bigint" in str(refused.value)


@pytest.mark.parametrize(
    ("table_type", "file_type"),
    [
        pytest.param("long", "string", id="string-file-bigint-table"),
        pytest.param("decimal(10,2)", "decimal(10,3)", id="decimal-scale-change"),
        pytest.param("integer", "double", id="double-file-int-table"),
    ],
)
@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_text_formats_never_fail_on_types(table_type: str, file_type: str, file_format: str) -> None:
    result = plan(table=fields(("c", table_type)), files=fields(("c", file_type)), file_format=file_format)
    assert types(result)["c"] == table_type
    assert result.widened == []


# ------------------------------------------------------------------------------ plan_columns: system columns


def test_system_columns_are_appended_in_order() -> None:
    files = fields(("id", "string"), (CORRUPT_RECORD, "string"))
    result = plan(files=files, file_format="csv", metadata_columns=True)
    assert names(result) == ["id", CORRUPT_RECORD, RESCUED_DATA, *METADATA_NAMES]
    assert types(result) == {
        "id": "string",
        CORRUPT_RECORD: "string",
        RESCUED_DATA: "string",
        "_source_file": "string",
        "_source_size": "long",
        "_source_modified_at": "timestamp",
        "_ingested_at": "timestamp",
        "_run_id": "string",
    }


def test_system_columns_come_after_newly_added_columns() -> None:
    files = fields(("id", "string"), ("extra", "string"), (CORRUPT_RECORD, "string"))
    result = plan(table=fields(("id", "long")), files=files, file_format="csv")
    assert names(result) == ["id", "extra", CORRUPT_RECORD, RESCUED_DATA]


def test_metadata_columns_use_the_prefix() -> None:
    result = plan(files=fields(("id", "long")), metadata_columns=True, metadata_prefix="meta_")
    assert names(result) == [
        "id",
        "meta_source_file",
        "meta_source_size",
        "meta_source_modified_at",
        "meta_ingested_at",
        "meta_run_id",
    ]


def test_corrupt_record_only_when_files_have_it() -> None:
    result = plan(files=fields(("id", "string")), file_format="json")
    assert names(result) == ["id", RESCUED_DATA]


@pytest.mark.parametrize(
    ("file_format", "rescue_data", "mode", "has_rescued"),
    [
        ("csv", True, "add_new_columns", True),
        ("json", True, "add_new_columns", True),
        ("csv", False, "add_new_columns", False),
        ("parquet", True, "add_new_columns", False),
        ("parquet", False, "rescue", True),
        ("csv", False, "rescue", True),
    ],
)
def test_rescued_data_column_presence(file_format: str, rescue_data: bool, mode: str, has_rescued: bool) -> None:
    result = plan(files=fields(("id", "long")), file_format=file_format, rescue_data=rescue_data, evolution_mode=mode)
    assert (RESCUED_DATA in names(result)) is has_rescued


def test_system_columns_in_files_are_never_new_columns() -> None:
    files = fields(("id", "long"), (CORRUPT_RECORD, "string"), (RESCUED_DATA, "string"), ("_run_id", "string"))
    result = plan(
        table=fields(("id", "long")),
        files=files,
        file_format="csv",
        evolution_mode="fail_on_new_columns",
        metadata_columns=True,
    )
    assert result.new_columns == []
    assert names(result) == ["id", CORRUPT_RECORD, RESCUED_DATA, *METADATA_NAMES]


def test_system_columns_in_files_are_not_rescued_or_ignored() -> None:
    files = fields(("id", "long"), (RESCUED_DATA, "string"))
    rescued = plan(table=fields(("id", "long")), files=files, evolution_mode="rescue")
    ignored = plan(table=fields(("id", "long")), files=files, evolution_mode="none")
    assert rescued.rescued_columns == []
    assert ignored.ignored_columns == []


def test_metadata_named_file_column_is_a_normal_column_when_metadata_is_off() -> None:
    result = plan(table=fields(("id", "long")), files=fields(("id", "long"), ("_run_id", "string")))
    assert result.new_columns == ["_run_id"]


def test_system_columns_not_duplicated_when_table_has_them() -> None:
    table = fields(
        ("id", "long"),
        (CORRUPT_RECORD, "string"),
        (RESCUED_DATA, "string"),
        ("_Source_File", "string"),
        *[(n, t) for n, t in zip(METADATA_NAMES[1:], ["long", "timestamp", "timestamp", "string"], strict=True)],
    )
    files = fields(("id", "string"), (CORRUPT_RECORD, "string"))
    result = plan(table=table, files=files, file_format="csv", metadata_columns=True)
    assert result.table_fields == table
    assert result.new_columns == []


# ------------------------------------------------------------------------------ promotable / lossless_cast


@pytest.mark.parametrize(
    ("table_type", "file_type", "expected"),
    [
        ("integer", "long", True),
        ("float", "double", True),
        ("decimal(10,2)", "decimal(12,2)", True),
        ("long", "integer", False),
        ("integer", "double", False),
        ("long", "double", False),
        ("integer", "integer", False),
        ("decimal(10,2)", "decimal(10,2)", False),
        ("decimal(12,2)", "decimal(10,2)", False),
        ("decimal(10,2)", "decimal(12,3)", False),
        ("string", "decimal(12,2)", False),
    ],
)
def test_promotable(table_type: Any, file_type: Any, expected: bool) -> None:
    assert promotable(table_type, file_type) is expected


STRUCT_A = {"type": "struct", "fields": [make_field("a", "long")]}
STRUCT_AB = {"type": "struct", "fields": [make_field("a", "long"), make_field("b", "string")]}


@pytest.mark.parametrize(
    ("table_type", "file_type"),
    [(ARRAY_OF_STRING, "string"), (STRUCT_A, STRUCT_AB), ("string", ARRAY_OF_STRING)],
)
def test_promotable_is_false_for_nested_types(table_type: Any, file_type: Any) -> None:
    assert promotable(table_type, file_type) is False


@pytest.mark.parametrize(
    ("file_type", "table_type"),
    [(ARRAY_OF_STRING, "string"), (STRUCT_AB, STRUCT_A), ("long", ARRAY_OF_STRING)],
)
def test_lossless_cast_is_false_for_differing_nested_types(file_type: Any, table_type: Any) -> None:
    assert lossless_cast(file_type, table_type) is False


def test_json_nested_type_change_does_not_fail() -> None:
    # A JSON object gains a field: the table's struct and the files' inferred struct differ.
    result = plan(table=fields(("payload", STRUCT_A)), files=fields(("payload", STRUCT_AB)), file_format="json")
    assert names(result) == ["payload", RESCUED_DATA]


@pytest.mark.parametrize(
    ("table_type", "file_type"),
    [(ARRAY_OF_STRING, "string"), (STRUCT_A, STRUCT_AB), ("long", ARRAY_OF_STRING)],
)
def test_typed_format_nested_type_change_is_refused(table_type: Any, file_type: Any) -> None:
    with pytest.raises(BatchRefused):
        plan(table=fields(("c", table_type)), files=fields(("c", file_type)), file_format="parquet")


@pytest.mark.parametrize(
    ("file_type", "table_type", "expected"),
    [
        ("integer", "long", True),
        ("byte", "short", True),
        ("integer", "double", True),
        ("float", "double", True),
        ("date", "timestamp", True),
        ("boolean", "string", True),
        ("decimal(10,2)", "string", True),
        ("long", "long", True),
        (ARRAY_OF_STRING, dict(ARRAY_OF_STRING), True),
        ("decimal(10,2)", "decimal(12,4)", True),
        ("decimal(10,2)", "decimal(10,2)", True),
        ("long", "integer", False),
        ("long", "double", False),
        ("double", "float", False),
        ("timestamp", "date", False),
        ("string", "long", False),
        ("decimal(10,3)", "decimal(10,2)", False),
        ("decimal(10,2)", "decimal(10,3)", False),
        ("decimal(12,2)", "decimal(10,2)", False),
    ],
)
def test_lossless_cast(file_type: Any, table_type: Any, expected: bool) -> None:
    assert lossless_cast(file_type, table_type) is expected


# ------------------------------------------------------------------------------ choose_sample


@pytest.mark.parametrize(
    ("sizes", "max_files", "max_bytes", "expected"),
    [
        pytest.param([], 10, 100, 0, id="no-files"),
        pytest.param([500], 10, 100, 1, id="first-file-over-limit-still-read"),
        pytest.param([500, 1, 1], 10, 100, 1, id="stops-after-oversized-first-file"),
        pytest.param([40, 60, 1], 10, 100, 2, id="exactly-at-byte-limit"),
        pytest.param([40, 70, 1], 10, 100, 1, id="stops-at-first-file-over-limit"),
        pytest.param([1] * 10, 3, 100, 3, id="file-limit"),
        pytest.param([1, 1], 5, 100, 2, id="fewer-files-than-limit"),
        pytest.param([1, 1], 0, 100, 1, id="at-least-one"),
        pytest.param([0, 0, 0], 10, 0, 3, id="empty-files-fit-zero-bytes"),
    ],
)
def test_choose_sample(sizes: list[int], max_files: int, max_bytes: int, expected: int) -> None:
    assert choose_sample(sizes, max_files, max_bytes) == expected


# ------------------------------------------------------------------------------ raw_json_type


@pytest.mark.parametrize("data_type", ["long", "double", "boolean", "string", "decimal(10,2)", "timestamp"])
def test_raw_json_type_reads_primitives_as_strings(data_type: str) -> None:
    assert raw_json_type(data_type) == "string"


def test_raw_json_type_keeps_nested_types() -> None:
    nested = {"type": "struct", "fields": [make_field("a", "long")]}
    assert raw_json_type(nested) is nested
    assert raw_json_type(ARRAY_OF_STRING) is ARRAY_OF_STRING


# ------------------------------------------------------------------------------ spark_types


@pytest.mark.parametrize(
    ("name", "quoted"),
    [("id", "`id`"), ("first name", "`first name`"), ("a`b", "`a``b`"), ("``", "``````")],
)
def test_quote(name: str, quoted: str) -> None:
    assert quote(name) == quoted


@pytest.mark.parametrize(
    ("data_type", "sql"),
    [
        ("long", "bigint"),
        ("integer", "int"),
        ("short", "smallint"),
        ("byte", "tinyint"),
        ("string", "string"),
        ("decimal(10,2)", "decimal(10,2)"),
        ({"type": "array", "elementType": "long", "containsNull": True}, "array<bigint>"),
        (
            {"type": "map", "keyType": "string", "valueType": "integer", "valueContainsNull": True},
            "map<string,int>",
        ),
        (
            {
                "type": "struct",
                "fields": [
                    make_field("a b", "short"),
                    make_field("c`d", {"type": "array", "elementType": "string", "containsNull": True}),
                ],
            },
            "struct<`a b`:smallint,`c``d`:array<string>>",
        ),
    ],
)
def test_sql_type(data_type: Any, sql: str) -> None:
    assert sql_type(data_type) == sql


@pytest.mark.parametrize("data_type", [{"type": "udt"}, {}, None, 3])
def test_sql_type_rejects_unknown_types(data_type: Any) -> None:
    with pytest.raises(ValueError, match="unknown Spark type"):
        sql_type(data_type)


def test_schema_columns() -> None:
    schema = {
        "type": "struct",
        "fields": [
            make_field("id", "long"),
            make_field("tags", ARRAY_OF_STRING),
            make_field("price", "decimal(10,2)"),
        ],
    }
    assert schema_columns(json.dumps(schema)) == [
        ("id", "bigint"),
        ("tags", "array<string>"),
        ("price", "decimal(10,2)"),
    ]
    assert schema_columns(json.dumps({"type": "struct"})) == []


@pytest.mark.parametrize(
    ("transform", "parsed"),
    [
        ("id", ("identity", None, "id")),
        ("  id  ", ("identity", None, "id")),
        ("`my col`", ("identity", None, "my col")),
        ("`a``b`", ("identity", None, "a`b")),
        ("days(ts)", ("days", None, "ts")),
        ("YEARS( ts )", ("years", None, "ts")),
        ("hours(`event time`)", ("hours", None, "event time")),
        ("bucket(16, id)", ("bucket", 16, "id")),
        ("Truncate(4,`na``me`)", ("truncate", 4, "na`me")),
        ("bucket(999999, id)", ("bucket", 999999, "id")),
    ],
)
def test_parse_partition(transform: str, parsed: tuple[str, int | None, str]) -> None:
    assert parse_partition(transform) == parsed


@pytest.mark.parametrize(
    "transform",
    [
        "",
        "1id",
        "my col",
        "bucket(0, id)",
        "bucket(id)",
        "bucket(1000000, id)",
        "days(16, ts)",
        "weeks(ts)",
        "months(a, b)",
        "`unclosed",
        "id; DROP TABLE t",
    ],
)
def test_parse_partition_rejects_invalid(transform: str) -> None:
    assert parse_partition(transform) is None


@pytest.mark.parametrize(
    ("transform", "sql"),
    [
        ("id", "`id`"),
        ("`a``b`", "`a``b`"),
        ("MONTHS(ts)", "months(`ts`)"),
        ("bucket( 8 ,`my col`)", "bucket(8, `my col`)"),
        ("truncate(10, name)", "truncate(10, `name`)"),
    ],
)
def test_partition_sql(transform: str, sql: str) -> None:
    assert partition_sql(transform) == sql


def test_partition_sql_rejects_invalid() -> None:
    with pytest.raises(ValueError, match="not a partition transform"):
        partition_sql("bucket(0, id)")


# --- JSON objects that gain fields ---------------------------------------------------------------------------


def test_nested_union_adds_fields_at_every_depth_and_keeps_known_types() -> None:
    inner_old = {"type": "struct", "fields": [make_field("x", "long")]}
    inner_new = {"type": "struct", "fields": [make_field("x", "string"), make_field("y", "double")]}
    table_type = {"type": "struct", "fields": [make_field("a", "long"), make_field("in", inner_old)]}
    file_type = {
        "type": "struct",
        "fields": [make_field("in", inner_new), make_field("A", "string"), make_field("b", "boolean")],
    }
    grown = nested_union(table_type, file_type)
    assert grown["fields"] == [
        make_field("a", "long"),
        make_field("in", {"type": "struct", "fields": [make_field("x", "long"), make_field("y", "double")]}),
        make_field("b", "boolean"),
    ]


def test_nested_union_grows_array_elements_and_keeps_other_shapes() -> None:
    array_of = {"type": "array", "elementType": STRUCT_A, "containsNull": True}
    grown = nested_union(array_of, {"type": "array", "elementType": STRUCT_AB, "containsNull": True})
    assert grown["elementType"] == STRUCT_AB
    assert nested_union(STRUCT_A, ARRAY_OF_STRING) == STRUCT_A


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("add_new_columns", STRUCT_AB), ("rescue", STRUCT_A), ("none", STRUCT_A)],
)
def test_json_object_gaining_a_field_follows_the_evolution_mode(mode: str, expected: Any) -> None:
    result = plan(
        table=fields(("payload", STRUCT_A)),
        files=fields(("payload", STRUCT_AB)),
        file_format="json",
        evolution_mode=mode,
    )
    assert types(result)["payload"] == expected


def test_json_object_gaining_a_field_is_refused_under_fail_on_new_columns() -> None:
    with pytest.raises(BatchRefused, match="column 'payload': the files have nested fields the table does not"):
        plan(
            table=fields(("payload", STRUCT_A)),
            files=fields(("payload", STRUCT_AB)),
            file_format="json",
            evolution_mode="fail_on_new_columns",
        )
