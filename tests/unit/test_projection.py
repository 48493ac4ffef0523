"""The SELECT expressions that project a batch as read onto the table's columns. The SQL is only built here,
not run: the tests check each expression's shape, not whole statements."""

from __future__ import annotations

from typing import Any

import pytest

from services.executor.projection import (
    INPUT_FILE_PATH,
    META,
    RESCUED_FILE_KEY,
    SOURCE_PATH,
    ParsedColumns,
    direct_columns,
    literal,
    parsed_select_expressions,
    parsed_types,
    select_expressions,
)
from services.executor.schema_policy import (
    CORRUPT_RECORD,
    RESCUED_DATA,
    ColumnPlan,
    SchemaSettings,
    make_field,
    plan_columns,
)

ARRAY_OF_STRING = {"type": "array", "elementType": "string", "containsNull": True}
STRUCT = {"type": "struct", "fields": [make_field("a", "long")]}


def table_plan(*pairs: tuple[str, Any], rescued: list[str] | None = None) -> ColumnPlan:
    return ColumnPlan([make_field(name, data_type) for name, data_type in pairs], rescued_columns=rescued or [])


def project(
    raw: list[tuple[str, Any]],
    plan: ColumnPlan,
    *,
    file_format: str = "parquet",
    run_id: str = "run-1",
    **settings: Any,
) -> list[str]:
    return select_expressions(raw, plan, settings=SchemaSettings(**settings), file_format=file_format, run_id=run_id)


def by_alias(expressions: list[str]) -> dict[str, str]:
    """alias → expression, from "<expression> AS `alias`"."""
    result = {}
    for text in expressions:
        expression, alias = text.rsplit(" AS ", 1)
        assert alias.startswith("`") and alias.endswith("`"), text
        result[alias[1:-1].replace("``", "`")] = expression
    return result


# ------------------------------------------------------------------------------ literal


@pytest.mark.parametrize(
    ("text", "sql"),
    [
        ("plain", "'plain'"),
        ("", "''"),
        ("it's", "'it\\'s'"),
        ("a\\b", "'a\\\\b'"),
        ("\\'", "'\\\\\\''"),
        ("''", "'\\'\\''"),
        ('say "hi"', "'say \"hi\"'"),
    ],
)
def test_literal_escapes_quotes_and_backslashes(text: str, sql: str) -> None:
    assert literal(text) == sql


# ------------------------------------------------------------------------------ columns


def test_expressions_follow_plan_order_not_raw_order() -> None:
    plan = table_plan(("c", "long"), ("a", "string"), ("missing", "long"), ("b", "double"))
    raw = [("a", "string"), ("b", "double"), ("c", "long")]
    assert list(by_alias(project(raw, plan))) == ["c", "a", "missing", "b"]


def test_one_expression_per_table_column_and_none_for_extra_raw_columns() -> None:
    expressions = project([("id", "long"), ("extra", "string")], table_plan(("id", "long")))
    assert expressions == ["`id` AS `id`"]


def test_same_type_is_the_bare_column() -> None:
    assert project([("tags", ARRAY_OF_STRING)], table_plan(("tags", ARRAY_OF_STRING))) == ["`tags` AS `tags`"]


@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_text_value_is_try_cast(file_format: str) -> None:
    expressions = by_alias(project([("amount", "string")], table_plan(("amount", "double")), file_format=file_format))
    assert expressions["amount"] == "try_cast(`amount` AS double)"


def test_text_cast_uses_sql_type_names() -> None:
    plan = table_plan(("n", "long"), ("p", "decimal(10,2)"), ("s", "short"))
    raw = [("n", "string"), ("p", "string"), ("s", "string")]
    expressions = project(raw, plan, file_format="csv", rescue_data=False)
    assert expressions == [
        "try_cast(`n` AS bigint) AS `n`",
        "try_cast(`p` AS decimal(10,2)) AS `p`",
        "try_cast(`s` AS smallint) AS `s`",
    ]


@pytest.mark.parametrize("file_format", ["parquet", "orc", "avro"])
def test_typed_value_is_cast(file_format: str) -> None:
    expressions = project([("n", "integer")], table_plan(("n", "long")), file_format=file_format)
    assert expressions == ["CAST(`n` AS bigint) AS `n`"]


def test_typed_string_value_is_cast_not_try_cast() -> None:
    expressions = project([("n", "string")], table_plan(("n", "long")), file_format="parquet")
    assert expressions == ["CAST(`n` AS bigint) AS `n`"]


def test_missing_column_is_typed_null() -> None:
    plan = table_plan(("price", "decimal(10,2)"), ("tags", ARRAY_OF_STRING), ("n", "integer"))
    assert project([], plan, file_format="csv", rescue_data=False) == [
        "CAST(NULL AS decimal(10,2)) AS `price`",
        "CAST(NULL AS array<string>) AS `tags`",
        "CAST(NULL AS int) AS `n`",
    ]


def test_raw_columns_match_case_insensitively_and_alias_table_spelling() -> None:
    expressions = project(
        [("AMOUNT", "string")], table_plan(("Amount", "double")), file_format="csv", rescue_data=False
    )
    assert expressions == ["try_cast(`AMOUNT` AS double) AS `Amount`"]


def test_odd_names_are_quoted() -> None:
    expressions = project([("we`ird name", "integer")], table_plan(("we`ird name", "long")))
    assert expressions == ["CAST(`we``ird name` AS bigint) AS `we``ird name`"]


def test_corrupt_record_is_passed_through() -> None:
    plan = table_plan(("id", "string"), (CORRUPT_RECORD, "string"))
    expressions = by_alias(project([("id", "string"), (CORRUPT_RECORD, "string")], plan, file_format="csv"))
    assert expressions[CORRUPT_RECORD] == f"`{CORRUPT_RECORD}`"


def test_nested_json_value_into_string_column_is_json_text() -> None:
    expressions = project([("payload", STRUCT)], table_plan(("payload", "string")), file_format="json")
    assert expressions == ["to_json(`payload`) AS `payload`"]


# ------------------------------------------------------------------------------ metadata columns


def test_metadata_columns_come_from_the_hidden_metadata_struct() -> None:
    plan = table_plan(
        ("id", "long"),
        ("m_source_file", "string"),
        ("m_source_size", "long"),
        ("m_source_modified_at", "timestamp"),
        ("m_ingested_at", "timestamp"),
        ("m_run_id", "string"),
    )
    expressions = by_alias(
        project([("id", "long")], plan, run_id="run'7\\x", metadata_columns=True, metadata_prefix="m_")
    )
    assert expressions == {
        "id": "`id`",
        "m_source_file": SOURCE_PATH,
        "m_source_size": f"{META}.file_size",
        "m_source_modified_at": f"{META}.file_modification_time",
        "m_ingested_at": "current_timestamp()",
        "m_run_id": "'run\\'7\\\\x'",
    }


def test_source_path_reads_the_file_path_of_the_metadata_struct() -> None:
    assert f"{META}.file_path" in SOURCE_PATH
    assert "url_decode(" in SOURCE_PATH
    assert "'^s3a://', 's3://'" in SOURCE_PATH


def test_metadata_named_columns_are_ordinary_when_metadata_is_off() -> None:
    plan = table_plan(("_run_id", "string"), ("_source_size", "long"))
    expressions = project([("_source_size", "long")], plan)
    assert expressions == ["CAST(NULL AS string) AS `_run_id`", "`_source_size` AS `_source_size`"]


def test_metadata_expressions_only_for_the_configured_prefix() -> None:
    plan = table_plan(("_run_id", "string"), ("m_run_id", "string"))
    expressions = by_alias(project([], plan, run_id="r", metadata_columns=True, metadata_prefix="m_"))
    assert expressions == {"_run_id": "CAST(NULL AS string)", "m_run_id": "'r'"}


# ------------------------------------------------------------------------------ _rescued_data


def test_rescued_data_is_null_without_anything_to_rescue() -> None:
    plan = table_plan(("id", "long"), (RESCUED_DATA, "string"))
    expressions = project([("id", "integer")], plan, file_format="parquet", evolution_mode="rescue")
    assert expressions == ["CAST(`id` AS bigint) AS `id`", f"CAST(NULL AS STRING) AS `{RESCUED_DATA}`"]


def test_rescued_data_is_null_for_text_when_rescue_is_off() -> None:
    plan = table_plan(("n", "long"), (RESCUED_DATA, "string"))
    expressions = by_alias(project([("n", "string")], plan, file_format="csv", rescue_data=False))
    assert expressions["n"] == "try_cast(`n` AS bigint)"
    assert expressions[RESCUED_DATA] == "CAST(NULL AS STRING)"


def test_rescued_data_collects_values_that_do_not_parse() -> None:
    plan = table_plan(("n", "long"), ("name", "string"), ("when", "date"), (RESCUED_DATA, "string"))
    raw = [("n", "string"), ("name", "string"), ("when", "string")]
    rescued = by_alias(project(raw, plan, file_format="csv"))[RESCUED_DATA]
    n_lost = "(`n` IS NOT NULL AND try_cast(`n` AS bigint) IS NULL)"
    when_lost = "(`when` IS NOT NULL AND try_cast(`when` AS date) IS NULL)"
    assert rescued.startswith(f"CASE WHEN {n_lost} OR {when_lost} THEN to_json(named_struct(")
    assert rescued.endswith(")) END")
    assert f"'n', CASE WHEN {n_lost} THEN `n` END" in rescued
    assert f"'when', CASE WHEN {when_lost} THEN `when` END" in rescued
    assert f"{literal(RESCUED_FILE_KEY)}, {SOURCE_PATH}" in rescued
    # A string column cannot fail to parse: it is not checked.
    assert "'name'" not in rescued


def test_rescued_data_entry_order_and_file_path_last() -> None:
    plan = table_plan(("b", "long"), ("a", "long"), (RESCUED_DATA, "string"))
    rescued = by_alias(project([("a", "string"), ("b", "string")], plan, file_format="json"))[RESCUED_DATA]
    assert rescued.index("'b', CASE") < rescued.index("'a', CASE") < rescued.index(f"'{RESCUED_FILE_KEY}', ")


def test_rescued_data_keys_are_the_raw_names_escaped() -> None:
    plan = table_plan(("It's", "long"), (RESCUED_DATA, "string"))
    rescued = by_alias(project([("it's", "string")], plan, file_format="csv"))[RESCUED_DATA]
    assert "'it\\'s', CASE WHEN (`it's` IS NOT NULL AND try_cast(`it's` AS bigint) IS NULL) THEN `it's` END" in rescued


def test_rescue_mode_rescues_unknown_columns_as_text() -> None:
    plan = table_plan(("id", "long"), (RESCUED_DATA, "string"), rescued=["extra", "Payload", "tags"])
    raw = [("id", "string"), ("extra", "string"), ("payload", STRUCT), ("tags", ARRAY_OF_STRING)]
    expressions = by_alias(project(raw, plan, file_format="json", evolution_mode="rescue"))
    assert list(expressions) == ["id", RESCUED_DATA]
    rescued = expressions[RESCUED_DATA]
    assert "'extra', CASE WHEN (`extra` IS NOT NULL) THEN `extra` END" in rescued
    assert "'payload', CASE WHEN (`payload` IS NOT NULL) THEN to_json(`payload`) END" in rescued
    assert "'tags', CASE WHEN (`tags` IS NOT NULL) THEN to_json(`tags`) END" in rescued
    assert "(`payload` IS NOT NULL) OR (`tags` IS NOT NULL)" in rescued
    assert f"'{RESCUED_FILE_KEY}', {SOURCE_PATH}" in rescued


def test_rescue_mode_typed_unknown_primitive_is_cast_to_string() -> None:
    plan = table_plan(("id", "long"), (RESCUED_DATA, "string"), rescued=["n"])
    raw = [("id", "long"), ("n", "integer")]
    rescued = by_alias(project(raw, plan, file_format="parquet", evolution_mode="rescue"))[RESCUED_DATA]
    assert rescued.startswith("CASE WHEN (`n` IS NOT NULL) THEN to_json(named_struct(")
    assert "'n', CASE WHEN (`n` IS NOT NULL) THEN CAST(`n` AS STRING) END" in rescued


def test_typed_cast_is_never_a_rescue_check() -> None:
    plan = table_plan(("n", "long"), (RESCUED_DATA, "string"))
    rescued = by_alias(project([("n", "integer")], plan, evolution_mode="rescue"))[RESCUED_DATA]
    assert rescued == "CAST(NULL AS STRING)"


def test_projection_of_a_planned_csv_batch() -> None:
    settings = SchemaSettings(metadata_columns=True)
    files = [make_field("id", "integer"), make_field("amount", "double"), make_field(CORRUPT_RECORD, "string")]
    plan = plan_columns(
        table=[make_field("id", "long")], explicit=None, files=files, hints={}, settings=settings, file_format="csv"
    )
    raw = [(f["name"], "string") for f in files]
    expressions = select_expressions(raw, plan, settings=settings, file_format="csv", run_id="r1")
    aliases = by_alias(expressions)
    assert list(aliases) == [
        "id",
        "amount",
        CORRUPT_RECORD,
        RESCUED_DATA,
        "_source_file",
        "_source_size",
        "_source_modified_at",
        "_ingested_at",
        "_run_id",
    ]
    assert aliases["id"] == "try_cast(`id` AS bigint)"
    assert aliases["amount"] == "try_cast(`amount` AS double)"
    assert aliases[CORRUPT_RECORD] == f"`{CORRUPT_RECORD}`"
    assert "'id', CASE WHEN" in aliases[RESCUED_DATA]
    assert "'amount', CASE WHEN" in aliases[RESCUED_DATA]
    assert f"'{CORRUPT_RECORD}'" not in aliases[RESCUED_DATA]
    assert aliases["_run_id"] == "'r1'"


# ------------------------------------------------------------------------------ columns parsed while reading

REPARSED = "from_csv(`_corrupt_record`, 'ddl', map())"


def test_only_numbers_and_booleans_are_parsed_by_the_csv_reader() -> None:
    plan = table_plan(
        ("id", "long"), ("amount", "double"), ("ok", "boolean"), ("day", "date"), ("price", "decimal(10,2)"),
        ("name", "string"), ("src_run_id", "long"),
    )  # fmt: skip
    raw = [(name, "string") for name in ("id", "amount", "ok", "day", "price", "name", "src_run_id")]
    types = parsed_types(raw, plan, SchemaSettings(metadata_columns=True, metadata_prefix="src_"))
    # Dates and decimals: the reader's own formats and locale would accept other values than a cast does.
    assert types == {"id": "long", "amount": "double", "ok": "boolean"}


def test_a_row_the_reader_accepted_needs_no_cast_and_a_rejected_row_is_cast_from_its_text() -> None:
    plan = table_plan(("id", "long"), ("day", "date"), (CORRUPT_RECORD, "string"), (RESCUED_DATA, "string"))
    raw = [("id", "string"), ("day", "string"), (CORRUPT_RECORD, "string")]
    parsed = ParsedColumns(types={"id": "long"}, reparsed=REPARSED, with_metadata=False)
    expressions = by_alias(
        parsed_select_expressions(raw, parsed, plan, settings=SchemaSettings(rescue_data=True), run_id="r")
    )
    good, bad = expressions["id"].removeprefix("CASE WHEN `_corrupt_record` IS NULL THEN ").split(" ELSE ")
    assert good == "`id`"  # read as a long already
    assert bad == f"try_cast({REPARSED}.`id` AS bigint) END"
    # An accepted row has no line in _corrupt_record; a rejected one keeps it only if the text read would.
    assert expressions[CORRUPT_RECORD] == (
        f"CASE WHEN `_corrupt_record` IS NULL THEN CAST(NULL AS string) ELSE {REPARSED}.`_corrupt_record` END"
    )
    # The date column stays text on both kinds of row, so an accepted row can still rescue a bad date.
    assert "try_cast(`day` AS date) IS NULL" in expressions[RESCUED_DATA]
    assert f"try_cast({REPARSED}.`id` AS bigint) IS NULL" in expressions[RESCUED_DATA]
    # Without the _metadata column the rescued file path comes from input_file_name(), on the rows that need it.
    assert INPUT_FILE_PATH in expressions[RESCUED_DATA] and META not in expressions[RESCUED_DATA]


def test_metadata_columns_keep_the_metadata_path_when_columns_are_parsed() -> None:
    settings = SchemaSettings(metadata_columns=True, metadata_prefix="m_", rescue_data=True)
    plan = plan_columns(
        table=None, explicit=[make_field("id", "long")], files=[make_field("id", "string")], hints={},
        settings=settings, file_format="csv",
    )  # fmt: skip
    parsed = ParsedColumns(types={"id": "long"}, reparsed=REPARSED, with_metadata=True)
    expressions = by_alias(parsed_select_expressions([("id", "string")], parsed, plan, settings=settings, run_id="r"))
    assert expressions["m_source_file"] == SOURCE_PATH  # the same on every row: no CASE
    assert INPUT_FILE_PATH not in expressions[RESCUED_DATA]


# ------------------------------------------------------------------------------ direct_columns


def direct(raw: list[tuple[str, Any]], types: dict[str, Any], plan: ColumnPlan, **settings: Any) -> list[str] | None:
    return direct_columns(raw, types, plan, settings=SchemaSettings(**settings), run_id="r")


CSV_TABLE = (("id", "long"), ("name", "string"), (CORRUPT_RECORD, "string"), (RESCUED_DATA, "string"))
CSV_RAW = [("id", "string"), ("name", "string"), (CORRUPT_RECORD, "string")]


def test_a_batch_the_reader_types_completely_is_written_as_read_without_the_always_null_columns() -> None:
    # _corrupt_record and _rescued_data are null on every row the reader accepted: the table fills them in.
    assert direct(CSV_RAW, {"id": "long"}, table_plan(*CSV_TABLE), rescue_data=True) == ["id", "name"]


def test_the_direct_columns_follow_the_table_order() -> None:
    plan = table_plan(("name", "string"), ("id", "long"), (CORRUPT_RECORD, "string"))
    assert direct(CSV_RAW, {"id": "long"}, plan) == ["name", "id"]


@pytest.mark.parametrize(
    ("raw", "types", "plan", "settings"),
    [
        # a date stays text and is cast (and rescued) by the projection
        ([("day", "string"), (CORRUPT_RECORD, "string")], {}, table_plan(("day", "date")), {}),
        # a column of the files that the table rescues
        (CSV_RAW, {"id": "long"}, table_plan(("id", "long"), (RESCUED_DATA, "string"), rescued=["name"]), {}),
        # a column of the files that the table does not hold: a partial read would check fewer fields per row
        (CSV_RAW, {"id": "long"}, table_plan(("id", "long")), {}),
        # a spelling other than the table's
        ([("ID", "string"), (CORRUPT_RECORD, "string")], {"ID": "long"}, table_plan(("id", "long")), {}),
        # metadata columns are computed per row
        (CSV_RAW, {"id": "long"}, table_plan(*CSV_TABLE, ("m_run_id", "string")),
         {"metadata_columns": True, "metadata_prefix": "m_"}),
    ],
)  # fmt: skip
def test_a_batch_that_needs_an_expression_is_not_written_directly(
    raw: list[tuple[str, Any]], types: dict[str, Any], plan: ColumnPlan, settings: dict[str, Any]
) -> None:
    assert direct(raw, types, plan, **settings) is None
