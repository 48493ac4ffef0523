"""CSV header names read in the driver's JVM without a Spark job must be exactly the ones Spark's own read
gives the same file, or None (Spark then reads them itself)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from services.executor.csv_header import header_names

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("content", "options"),
    [
        (b"id,name\n1,a\n", {}),
        (b'"a,b",c\r\n1,2\r\n', {}),  # a quoted separator, Windows line ends
        (b"\n\n  \nid;name\n1;a\n", {"sep": ";"}),  # blank lines before the header
        (b"# a comment\nid,name\n", {"comment": "#"}),
        (b"a,A,,a\n1,2,3,4\n", {}),  # duplicate (case-insensitively) and empty names are renamed
        (b"x,y", {}),  # no line end at all
        (b" id , name \n1,2\n", {}),
        (b"'a,b',c\n", {"quote": "'"}),
        ("naïve,日本\n".encode(), {}),
        (b"id\tname\n", {"delimiter": "\t"}),
    ],
)
def test_the_names_are_spark_s_own(
    spark: SparkSession, tmp_path: Path, content: bytes, options: dict[str, str]
) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    options = {"header": "true", **options}
    expected = [field.name for field in spark.read.options(**options).csv(str(path)).schema.fields]
    assert header_names(spark, options, content, whole_file=True) == expected


def test_a_header_within_a_cut_head_is_read_and_the_cut_line_ignored(spark: SparkSession) -> None:
    options = {"header": "true"}
    assert header_names(spark, options, b"id,name\n1,an", whole_file=False) == ["id", "name"]
    # The header itself cut off: the rest of it is beyond the bytes read.
    assert header_names(spark, options, b"id,na", whole_file=False) is None


@pytest.mark.parametrize(
    ("content", "options"),
    [
        (b'"a\nb",c\n', {"multiLine": "true"}),
        (b"id,name\n", {"encoding": "ISO-8859-1"}),
        (b"id,name|1,a|", {"lineSep": "|"}),
        (b"\xef\xbb\xbfid,name\n", {}),  # a byte order mark
        (b"\xff\xfeid\n", {}),  # not UTF-8
        (b"\n" * 30 + b"id,name\n", {}),  # the header beyond the lines looked at
        (b"", {}),
    ],
)
def test_what_spark_would_split_or_decode_otherwise_is_left_to_spark(
    spark: SparkSession, content: bytes, options: dict[str, str]
) -> None:
    assert header_names(spark, {"header": "true", **options}, content, whole_file=True) is None
