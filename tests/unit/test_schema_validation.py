"""The schema DDL parser and the checks on the schema policy, merge, partitioning, table properties and
metadata column settings of an ingestion. No services: the functions are called directly."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from services.control.models import Column, Destination, Ingestion, MetadataColumns, SchemaPolicy, Source
from services.control.schema_ddl import DdlError, columns_from_spark_json, parse_columns, parse_type, to_ddl
from services.control.validation import OVERWRITE_REFUSAL, partition_column, validate
from services.shared.errors import InvalidArgument

VALID = Ingestion(
    ingestion_id="orders-ingestion",
    name="Orders",
    source=Source(uri="s3://bucket-1/orders/", format="csv", options={"header": "true"}),
    destination=Destination(table="analytics.orders"),
)
MERGE = Destination(table="analytics.orders", write_mode="merge", merge_keys=("id",))


def violated_fields(ingestion: Ingestion) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validate(ingestion)
    return {v.field: v.description for v in caught.value.violations}


def with_schema(**fields: Any) -> Ingestion:
    return replace(VALID, schema=SchemaPolicy(**fields))


def with_destination(**fields: Any) -> Ingestion:
    return replace(VALID, destination=Destination(**{"table": "analytics.orders", **fields}))


# --------------------------------------------------------------------------------------------- parse_type


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        pytest.param("BIGINT", "bigint", id="upper-case"),
        pytest.param("  String\n", "string", id="surrounding-space"),
        pytest.param("timestamp_ntz", "timestamp_ntz", id="timestamp_ntz"),
        pytest.param("Decimal(10, 2)", "decimal(10,2)", id="decimal"),
        pytest.param("decimal", "decimal(10,0)", id="decimal-default"),
        pytest.param("NUMERIC(5)", "decimal(5,0)", id="numeric-precision-only"),
        pytest.param("dec(38,38)", "decimal(38,38)", id="decimal-upper-bounds"),
        pytest.param("decimal(1,0)", "decimal(1,0)", id="decimal-lower-bounds"),
        pytest.param("VARCHAR(20)", "varchar(20)", id="varchar"),
        pytest.param("Array<String>", "array<string>", id="array"),
        pytest.param("map<string, array<int>>", "map<string,array<int>>", id="map-of-array"),
        pytest.param("struct<a: int, b: string>", "struct<`a`:int,`b`:string>", id="struct"),
        pytest.param("struct<>", "struct<>", id="struct-empty"),
        pytest.param(
            "ARRAY<MAP<STRING, STRUCT<id: BIGINT, `the tags`: ARRAY<STRING>, `a``b`: DECIMAL(5,2)>>>",
            "array<map<string,struct<`id`:bigint,`the tags`:array<string>,`a``b`:decimal(5,2)>>>",
            id="deeply-nested-with-backticked-names",
        ),
        # Spark's aliases have one normal form: the one Spark itself reports (DataType.simpleString).
        pytest.param("LONG", "bigint", id="long-is-bigint"),
        pytest.param("Integer", "int", id="integer-is-int"),
        pytest.param("short", "smallint", id="short-is-smallint"),
        pytest.param("byte", "tinyint", id="byte-is-tinyint"),
        pytest.param("real", "float", id="real-is-float"),
        pytest.param("timestamp_ltz", "timestamp", id="timestamp_ltz-is-timestamp"),
        # Spark accepts struct fields with or without the colon.
        pytest.param("struct<a int, b: array<long>>", "struct<`a`:int,`b`:array<bigint>>", id="struct-no-colon"),
    ],
)
def test_parse_type_gives_the_normal_form(text: str, normal: str) -> None:
    assert parse_type(text) == normal
    assert parse_type(normal) == normal, "the normal form must parse to itself"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("", "ends early", id="empty"),
        pytest.param("money", "'money' is not a Spark SQL type", id="unknown-type"),
        pytest.param("decimal(39,0)", "precision must be 1-38", id="decimal-precision-too-big"),
        pytest.param("decimal(0)", "precision must be 1-38", id="decimal-precision-zero"),
        pytest.param("decimal(5,6)", "scale at most precision", id="decimal-scale-above-precision"),
        pytest.param("decimal(a,2)", "expected a number, found 'a'", id="decimal-not-a-number"),
        pytest.param("decimal(10,2", "expected ')'", id="decimal-unclosed"),
        pytest.param("varchar", "expected '('", id="varchar-without-length"),
        pytest.param("array<int", "ends early; expected '>'", id="array-unclosed"),
        pytest.param("array<>", "'>' is not a Spark SQL type", id="array-without-element"),
        pytest.param("map<string>", "expected ',', found '>'", id="map-without-value"),
        pytest.param("struct<a:>", "'>' is not a Spark SQL type", id="struct-field-without-type"),
        pytest.param("struct<a:int", "ends early", id="struct-unclosed"),
        pytest.param("int int", "unexpected 'int' after the type", id="two-types"),
        pytest.param("int;", "unexpected ';'", id="stray-character"),
        pytest.param("array<int>>", "unexpected '>' after the type", id="extra-bracket"),
    ],
)
def test_parse_type_refuses_bad_text_saying_why(text: str, reason: str) -> None:
    with pytest.raises(DdlError) as caught:
        parse_type(text)
    assert reason in str(caught.value)


def test_ddl_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a Spark SQL type"):
        parse_type("money")


# --------------------------------------------------------------------------------------------- parse_columns


def test_parse_columns_gives_names_and_normal_types() -> None:
    columns = parse_columns("id BIGINT, name String,\n  amount DECIMAL(12, 2), tags ARRAY<STRING>")

    assert columns == [
        Column("id", "bigint"),
        Column("name", "string"),
        Column("amount", "decimal(12,2)"),
        Column("tags", "array<string>"),
    ]


def test_parse_columns_unquotes_backticked_names() -> None:
    columns = parse_columns("`my col` int, `a``b` string, `select` map<string, struct<`x y`: double>>")

    assert columns == [
        Column("my col", "int"),
        Column("a`b", "string"),
        Column("select", "map<string,struct<`x y`:double>>"),
    ]


def test_to_ddl_parses_back_to_the_same_columns() -> None:
    columns = parse_columns("`my col` int, `a``b` string, id long, s struct<`in ner`: array<decimal(5,1)>>")

    ddl = to_ddl(columns)

    assert ddl == "`my col` int, `a``b` string, `id` bigint, `s` struct<`in ner`:array<decimal(5,1)>>"
    assert parse_columns(ddl) == columns


@pytest.mark.parametrize(
    ("ddl", "reason"),
    [
        pytest.param("", "names no column", id="empty"),
        pytest.param("   ", "names no column", id="blank"),
        pytest.param("id", "column 'id' has no type", id="no-type"),
        pytest.param("a int, b", "column 'b' has no type", id="last-without-type"),
        pytest.param("a, b int", "column 'a' has no type", id="first-without-type"),
        pytest.param("id int name string", "expected ',', found 'name'", id="missing-comma"),
        pytest.param("id int,", "ends early", id="trailing-comma"),
        pytest.param(",id int", "',' is not a column name", id="leading-comma"),
        pytest.param("1id int", "'1' is not a column name", id="name-starts-with-digit"),
        pytest.param("id money", "'money' is not a Spark SQL type", id="unknown-type"),
        pytest.param("price decimal(40,2)", "precision must be 1-38", id="decimal-out-of-bounds"),
        pytest.param("id int; drop table x", "unexpected ';", id="semicolon"),
    ],
)
def test_parse_columns_refuses_bad_ddl_saying_why(ddl: str, reason: str) -> None:
    with pytest.raises(DdlError) as caught:
        parse_columns(ddl)
    assert reason in str(caught.value)


# --------------------------------------------------------------------------------------------- Spark JSON

# StructType.json() of "id long, tags array<string>, attrs map<string,int>, `a``b` struct<`x y`: decimal(10,2),
# n short>, flag boolean, at timestamp, small byte" as Spark 3.5 writes it.
SPARK_SCHEMA = {
    "type": "struct",
    "fields": [
        {"name": "id", "type": "long", "nullable": True, "metadata": {}},
        {
            "name": "tags",
            "type": {"type": "array", "elementType": "string", "containsNull": True},
            "nullable": True,
            "metadata": {},
        },
        {
            "name": "attrs",
            "type": {"type": "map", "keyType": "string", "valueType": "integer", "valueContainsNull": True},
            "nullable": True,
            "metadata": {},
        },
        {
            "name": "a`b",
            "type": {
                "type": "struct",
                "fields": [
                    {"name": "x y", "type": "decimal(10,2)", "nullable": True, "metadata": {}},
                    {"name": "n", "type": "short", "nullable": True, "metadata": {}},
                ],
            },
            "nullable": True,
            "metadata": {},
        },
        {"name": "flag", "type": "boolean", "nullable": False, "metadata": {}},
        {"name": "at", "type": "timestamp", "nullable": True, "metadata": {}},
        {"name": "small", "type": "byte", "nullable": True, "metadata": {}},
    ],
}
SAME_SCHEMA_AS_DDL = (
    "id long, tags array<string>, attrs map<string,int>, `a``b` struct<`x y`: decimal(10,2), n short>,"
    " flag boolean, at timestamp, small byte"
)


def test_columns_from_spark_json_reads_nested_types() -> None:
    columns = columns_from_spark_json(json.dumps(SPARK_SCHEMA))

    assert columns == [
        Column("id", "bigint"),
        Column("tags", "array<string>"),
        Column("attrs", "map<string,int>"),
        Column("a`b", "struct<`x y`:decimal(10,2),`n`:smallint>"),
        Column("flag", "boolean"),
        Column("at", "timestamp"),
        Column("small", "tinyint"),
    ]
    assert parse_columns(to_ddl(columns)) == columns


def test_recorded_and_configured_schemas_use_one_normal_form() -> None:
    """GET .../schema reports the configured columns before a run and the recorded ones after: the same
    columns must look the same either way, or clients see changes that are not there."""
    assert columns_from_spark_json(json.dumps(SPARK_SCHEMA)) == parse_columns(SAME_SCHEMA_AS_DDL)


def test_columns_from_spark_json_of_an_empty_struct() -> None:
    assert columns_from_spark_json(json.dumps({"type": "struct", "fields": []})) == []


@pytest.mark.parametrize(
    ("data_type", "reason"),
    [
        pytest.param({"type": "udt", "class": "x.Point"}, "'udt'", id="unknown-kind"),
        pytest.param(7, "7", id="not-a-type"),
        pytest.param({"type": "array", "elementType": {"type": "bogus"}}, "'bogus'", id="nested"),
    ],
)
def test_columns_from_spark_json_refuses_unknown_types(data_type: object, reason: str) -> None:
    schema = {"type": "struct", "fields": [{"name": "c", "type": data_type, "nullable": True, "metadata": {}}]}

    # A ValueError (DdlError is one) naming the type, never a KeyError or a made-up column type.
    with pytest.raises(ValueError, match="unknown") as caught:
        columns_from_spark_json(json.dumps(schema))
    assert reason in str(caught.value)


# --------------------------------------------------------------------------------------------- accepted configurations


@pytest.mark.parametrize(
    "ingestion",
    [
        pytest.param(VALID, id="defaults"),
        pytest.param(replace(VALID, destination=MERGE), id="merge-one-key"),
        pytest.param(
            with_destination(write_mode="merge", merge_keys=("order_id", "line"), merge_order_by="updated_at"),
            id="merge-keys-and-order-by",
        ),
        pytest.param(
            with_destination(
                partition_by=(
                    "country",
                    "years(ts)",
                    "MONTHS(ts)",
                    "days( ts )",
                    "hours(ts)",
                    "bucket(16, id)",
                    "Bucket(1,id)",
                    "truncate(4, name)",
                    "`event time`",
                    "days(`event time`)",
                    "bucket(999999, `a``b`)",
                )
            ),
            id="every-partition-transform",
        ),
        pytest.param(
            with_destination(
                table_properties={
                    "write.parquet.compression-codec": "zstd",
                    "format-version": "2",
                    "commit.retry.num-retries": "10",
                }
            ),
            id="table-properties",
        ),
        pytest.param(with_destination(table_properties={"format-version": "1"}), id="format-version-1"),
        pytest.param(with_schema(ddl="id BIGINT, name STRING"), id="schema-ddl"),
        pytest.param(with_schema(columns=(Column("id", "BIGINT"), Column("tags", "array<string>"))), id="columns"),
        pytest.param(with_schema(hints={"amount": "decimal(12,2)", "my col": "date"}), id="hints"),
        pytest.param(with_schema(evolution_mode="fail_on_new_columns"), id="fail_on_new_columns"),
        pytest.param(with_schema(evolution_mode="rescue"), id="rescue"),
        pytest.param(with_schema(evolution_mode="none"), id="none"),
        pytest.param(with_schema(sample_files=1, sample_bytes=1, rescue_data=False), id="smallest-samples"),
        pytest.param(with_schema(sample_files=100_000), id="largest-sample_files"),
        pytest.param(
            replace(
                VALID,
                schema=SchemaPolicy(ddl="ID bigint, `Event Time` timestamp, ts timestamp, v long"),
                destination=Destination(
                    table="a.b",
                    write_mode="merge",
                    merge_keys=("id",),
                    merge_order_by="V",
                    partition_by=("days(`event time`)", "hours(TS)"),
                ),
            ),
            id="explicit-schema-keys-and-partitions-match-case-insensitively",
        ),
        pytest.param(replace(VALID, metadata_columns=MetadataColumns(True, "src_")), id="metadata-prefix"),
        pytest.param(replace(VALID, metadata_columns=MetadataColumns(True, "_")), id="metadata-default-prefix"),
        pytest.param(replace(VALID, metadata_columns=MetadataColumns(True, "P" * 32)), id="metadata-longest-prefix"),
    ],
)
def test_valid_new_settings_pass(ingestion: Ingestion) -> None:
    validate(ingestion)


@pytest.mark.parametrize(
    ("transform", "column"),
    [
        ("country", "country"),
        ("days(event_time)", "event_time"),
        ("HOURS( ts )", "ts"),
        ("bucket(16, order_id)", "order_id"),
        ("truncate(4,name)", "name"),
        ("`my col`", "my col"),
        ("months(`a``b`)", "a`b"),
        ("foo(x)", None),
        ("bucket(0, id)", None),
        ("days()", None),
        ("bucket(16)", None),
        ("years(a, b)", None),
        ("", None),
    ],
)
def test_partition_column_names_the_column_a_transform_reads(transform: str, column: str | None) -> None:
    assert partition_column(transform) == column


# --------------------------------------------------------------------------------------------- write modes


def test_overwrite_is_still_refused_with_the_existing_message() -> None:
    reason = violated_fields(with_destination(write_mode="overwrite"))["destination.write_mode"]

    assert reason == OVERWRITE_REFUSAL
    assert "overwrite mode is not supported" in reason
    assert "DELETE /api/v1/ingestions/{ingestion_id}/processed-files" in reason


def test_unknown_write_mode_is_refused_naming_both_modes() -> None:
    reason = violated_fields(with_destination(write_mode="upsert"))["destination.write_mode"]

    assert "'upsert' is not supported" in reason
    assert "'append'" in reason and "'merge'" in reason


# --------------------------------------------------------------------------------------------- each violation


@pytest.mark.parametrize(
    ("ingestion", "field", "reason"),
    [
        # merge
        pytest.param(
            with_destination(write_mode="merge"), "destination.merge_keys", "is required", id="merge-without-keys"
        ),
        pytest.param(
            with_destination(merge_keys=("id",)),
            "destination.merge_keys",
            "only used with write_mode 'merge'",
            id="merge_keys-with-append",
        ),
        pytest.param(
            with_destination(merge_order_by="updated_at"),
            "destination.merge_order_by",
            "only used with write_mode 'merge'",
            id="merge_order_by-with-append",
        ),
        pytest.param(
            with_destination(write_mode="merge", merge_keys=("id", "line", "ID")),
            "destination.merge_keys[2]",
            "'ID' is listed twice",
            id="duplicate-merge-key",
        ),
        pytest.param(
            with_destination(write_mode="merge", merge_keys=("id", " ")),
            "destination.merge_keys[1]",
            "must not be empty",
            id="blank-merge-key",
        ),
        pytest.param(
            with_destination(write_mode="merge", merge_keys=("a\x00b",)),
            "destination.merge_keys[0]",
            "control characters",
            id="nul-in-merge-key",
        ),
        pytest.param(
            with_destination(write_mode="merge", merge_keys=("k" * 129,)),
            "destination.merge_keys[0]",
            "at most 128 characters",
            id="merge-key-too-long",
        ),
        pytest.param(
            with_destination(write_mode="merge", merge_keys=("id", "line"), merge_order_by="Line"),
            "destination.merge_order_by",
            "must not be one of the merge keys",
            id="merge_order_by-is-a-key",
        ),
        # partitioning
        pytest.param(
            with_destination(partition_by=("country", "foo(x)")),
            "destination.partition_by[1]",
            "'foo(x)' is not a partition transform",
            id="partition-unknown-transform",
        ),
        pytest.param(
            with_destination(partition_by=("bucket(0, id)",)),
            "destination.partition_by[0]",
            "bucket(N, column)",
            id="partition-bucket-zero",
        ),
        pytest.param(
            with_destination(partition_by=("days()",)),
            "destination.partition_by[0]",
            "days(column)",
            id="partition-days-without-column",
        ),
        pytest.param(
            with_destination(partition_by=("truncate(name)",)),
            "destination.partition_by[0]",
            "truncate(W, column)",
            id="partition-truncate-without-width",
        ),
        pytest.param(
            with_destination(partition_by=("bucket(1000000, id)",)),
            "destination.partition_by[0]",
            "is not a partition transform",
            id="partition-bucket-too-many",
        ),
        pytest.param(
            with_destination(partition_by=("country; drop",)),
            "destination.partition_by[0]",
            "is not a partition transform",
            id="partition-injection",
        ),
        # table properties
        pytest.param(
            with_destination(table_properties={"write.wap.enabled": "false"}),
            "destination.table_properties.write.wap.enabled",
            "set by Autoloader",
            id="property-managed-wap",
        ),
        pytest.param(
            with_destination(table_properties={"write.spark.accept-any-schema": "true"}),
            "destination.table_properties.write.spark.accept-any-schema",
            "cannot be changed",
            id="property-managed-accept-any-schema",
        ),
        pytest.param(
            with_destination(table_properties={"bad key!": "1"}),
            "destination.table_properties.bad key!",
            "property names are letters, digits",
            id="property-bad-key",
        ),
        pytest.param(
            with_destination(table_properties={".hidden": "1"}),
            "destination.table_properties..hidden",
            "property names are",
            id="property-key-leading-dot",
        ),
        pytest.param(
            with_destination(table_properties={"format-version": "3"}),
            "destination.table_properties.format-version",
            "must be one of: 1, 2",
            id="property-format-version-3",
        ),
        pytest.param(
            with_destination(table_properties={"comment": "x" * 1025}),
            "destination.table_properties.comment",
            "at most 1024 characters",
            id="property-value-too-long",
        ),
        # schema policy
        pytest.param(
            with_schema(evolution_mode="merge_schema"),
            "schema.evolution_mode",
            "must be one of: add_new_columns, fail_on_new_columns, rescue, none",
            id="evolution_mode-unknown",
        ),
        pytest.param(with_schema(evolution_mode=""), "schema.evolution_mode", "must be one of", id="evolution-empty"),
        pytest.param(with_schema(sample_files=0), "schema.sample_files", "between 1 and 100000", id="sample_files-0"),
        pytest.param(
            with_schema(sample_files=100_001), "schema.sample_files", "between 1 and", id="sample_files-too-many"
        ),
        pytest.param(with_schema(sample_bytes=0), "schema.sample_bytes", "at least 1", id="sample_bytes-0"),
        pytest.param(with_schema(sample_bytes=-1), "schema.sample_bytes", "at least 1", id="sample_bytes-negative"),
        pytest.param(
            with_schema(hints={"amount": "money"}),
            "schema.hints.amount",
            "type 'money': 'money' is not a Spark SQL type",
            id="hint-bad-type",
        ),
        pytest.param(
            with_schema(hints={"price": "decimal(50,2)"}),
            "schema.hints.price",
            "precision must be 1-38",
            id="hint-decimal-out-of-bounds",
        ),
        pytest.param(
            with_schema(hints={" ": "int"}), "schema.hints. ", "must not be empty", id="hint-blank-column-name"
        ),
        pytest.param(
            with_schema(ddl="id bigint", columns=(Column("id", "bigint"),)),
            "schema.columns",
            "either as ddl or as columns, not both",
            id="ddl-and-columns",
        ),
        pytest.param(
            with_schema(ddl="id bigint, name"), "schema.ddl", "column 'name' has no type", id="ddl-unparseable"
        ),
        pytest.param(
            with_schema(ddl="id bigint, name string, ID int"),
            "schema.ddl",
            "'id' appears twice",
            id="ddl-duplicate-name-case-insensitive",
        ),
        pytest.param(
            with_schema(columns=(Column("Amount", "double"), Column("amount", "int"))),
            "schema.columns",
            "'amount' appears twice",
            id="columns-duplicate-name-case-insensitive",
        ),
        pytest.param(
            with_schema(columns=(Column("id", "bigint"), Column("name", "strng"))),
            "schema.columns[1]",
            "type 'strng'",
            id="column-bad-type",
        ),
        pytest.param(
            with_schema(columns=(Column("", "bigint"),)),
            "schema.columns[0]",
            "must not be empty",
            id="column-without-name",
        ),
        # explicit schema and the columns other settings name
        pytest.param(
            replace(VALID, schema=SchemaPolicy(ddl="id bigint, v int"), destination=replace(MERGE, merge_keys=("k",))),
            "destination.merge_keys[0]",
            "'k' is not in the schema",
            id="merge-key-not-in-schema",
        ),
        pytest.param(
            replace(VALID, schema=SchemaPolicy(ddl="id bigint"), destination=replace(MERGE, merge_order_by="v")),
            "destination.merge_order_by",
            "'v' is not in the schema",
            id="merge_order_by-not-in-schema",
        ),
        pytest.param(
            replace(
                VALID,
                schema=SchemaPolicy(columns=(Column("id", "bigint"),)),
                destination=Destination(table="a.b", partition_by=("id", "days(created_at)")),
            ),
            "destination.partition_by[1]",
            "column 'created_at' is not in the schema",
            id="partition-column-not-in-schema",
        ),
        # metadata columns
        pytest.param(
            replace(VALID, metadata_columns=MetadataColumns(True, "1x")),
            "metadata_columns.prefix",
            "not starting with a digit",
            id="prefix-leading-digit",
        ),
        pytest.param(
            replace(VALID, metadata_columns=MetadataColumns(True, "a-b")),
            "metadata_columns.prefix",
            "letters, digits or _",
            id="prefix-hyphen",
        ),
        pytest.param(
            replace(VALID, metadata_columns=MetadataColumns(True, "")),
            "metadata_columns.prefix",
            "must be 1-32",
            id="prefix-empty",
        ),
        pytest.param(
            replace(VALID, metadata_columns=MetadataColumns(False, "p" * 33)),
            "metadata_columns.prefix",
            "must be 1-32",
            id="prefix-too-long-even-when-disabled",
        ),
    ],
)
def test_each_new_violation_names_its_field_and_reason(ingestion: Ingestion, field: str, reason: str) -> None:
    violations = violated_fields(ingestion)

    assert field in violations, violations
    assert reason in violations[field], violations[field]


def test_unparseable_ddl_is_reported_once_with_the_parser_message() -> None:
    violations = violated_fields(with_schema(ddl="id bigint, name strin"))

    assert violations == {
        "schema.ddl": "'strin' is not a Spark SQL type (e.g. string, bigint, double, date, decimal(10,2))"
    }


def test_every_new_violation_is_reported_together() -> None:
    broken = replace(
        VALID,
        destination=Destination(
            table="a.b",
            write_mode="merge",
            partition_by=("foo(x)",),
            table_properties={"write.wap.enabled": "false"},
        ),
        schema=SchemaPolicy(evolution_mode="sometimes", sample_files=0, sample_bytes=0, hints={"x": "money"}),
        metadata_columns=MetadataColumns(True, "a-b"),
    )

    with pytest.raises(InvalidArgument) as caught:
        validate(broken)

    assert {v.field for v in caught.value.violations} == {
        "destination.merge_keys",
        "destination.partition_by[0]",
        "destination.table_properties.write.wap.enabled",
        "schema.evolution_mode",
        "schema.sample_files",
        "schema.sample_bytes",
        "schema.hints.x",
        "metadata_columns.prefix",
    }
    assert "schema.evolution_mode" in caught.value.message
