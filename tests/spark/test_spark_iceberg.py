"""What the executor relies on from Spark + Iceberg, proven through a real SparkSession (DESIGN §3, §5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from services.executor.spark_session import CATALOG_SCHEMA, to_jdbc
from tests.spark.conftest import CATALOG

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

pytestmark = pytest.mark.integration

DUPLICATE_WAP = "org.apache.iceberg.exceptions.DuplicateWAPCommitException"


def _table(namespace: str, name: str = "events") -> str:
    return f"{CATALOG}.{namespace}.{name}"


def _rows(spark: SparkSession, count: int, start: int = 0) -> DataFrame:
    return spark.range(start, start + count).selectExpr("id", "concat('row-', id) AS payload")


def _create(spark: SparkSession, table: str, *, wap: bool = False) -> None:
    properties = " TBLPROPERTIES ('write.wap.enabled'='true')" if wap else ""
    spark.sql(f"CREATE TABLE {table} (id BIGINT, payload STRING) USING iceberg{properties}")


@dataclass(frozen=True)
class Snapshot:
    snapshot_id: int
    summary: dict[str, str]


def _snapshots(spark: SparkSession, table: str) -> list[Snapshot]:
    """Every snapshot of the table, staged ones included, oldest first."""
    rows = spark.sql(f"SELECT snapshot_id, summary FROM {table}.snapshots ORDER BY committed_at").collect()
    return [Snapshot(int(row["snapshot_id"]), dict(row["summary"])) for row in rows]


def _main_snapshot_id(spark: SparkSession, table: str) -> int | None:
    rows = spark.sql(f"SELECT snapshot_id FROM {table}.refs WHERE name = 'main'").collect()
    return int(rows[0]["snapshot_id"]) if rows else None


def _main_ancestors(spark: SparkSession, table: str) -> set[int]:
    # The history table lists exactly the snapshots that main pointed to (staged ones never appear).
    return {int(row["snapshot_id"]) for row in spark.sql(f"SELECT snapshot_id FROM {table}.history").collect()}


@contextmanager
def _wap_id(spark: SparkSession, key: str) -> Iterator[None]:
    """Writes inside the block are staged under `key` instead of landing on main."""
    spark.conf.set("spark.wap.id", key)
    try:
        yield
    finally:
        spark.conf.unset("spark.wap.id")


def _stage(spark: SparkSession, table: str, key: str, rows: DataFrame) -> int:
    before = {s.snapshot_id for s in _snapshots(spark, table)}
    with _wap_id(spark, key):
        rows.writeTo(table).append()
    (staged,) = {s.snapshot_id for s in _snapshots(spark, table)} - before
    return staged


def _cherrypick(spark: SparkSession, table: str, snapshot_id: int) -> int:
    identifier = table.split(".", 1)[1]  # the procedure takes the name inside its catalog
    row = spark.sql(f"CALL {CATALOG}.system.cherrypick_snapshot('{identifier}', {snapshot_id})").first()
    assert row is not None
    return int(row["current_snapshot_id"])


def test_catalog_tables_live_in_their_own_postgres_schema(
    spark: SparkSession, namespace: str, postgres_url: str
) -> None:
    table = _table(namespace)
    _create(spark, table)
    jdbc_url, properties = to_jdbc(postgres_url)
    # Spark's JDBC source needs the driver class named: DriverManager alone does not see spark.jars.
    properties["driver"] = "org.postgresql.Driver"
    catalog_rows = spark.read.jdbc(jdbc_url, f"{CATALOG_SCHEMA}.iceberg_tables", properties=properties)
    names = {
        (row["table_namespace"], row["table_name"])
        for row in catalog_rows.where(f"catalog_name = '{CATALOG}'").collect()
    }
    assert (namespace, "events") in names


def test_append_records_batch_key_in_snapshot_summary(spark: SparkSession, namespace: str) -> None:
    table = _table(namespace)
    _create(spark, table)
    (
        _rows(spark, 1000)
        .writeTo(table)
        .option("snapshot-property.autoloader.batch_key", "ing-1:7")
        .option("snapshot-property.autoloader.file_count", "3")
        .append()
    )
    (snapshot,) = _snapshots(spark, table)
    summary = snapshot.summary
    assert summary["autoloader.batch_key"] == "ing-1:7"
    assert summary["autoloader.file_count"] == "3"
    assert summary["added-records"] == "1000"
    assert spark.table(table).count() == 1000


def _write_csv(directory: Path) -> None:
    (directory / "a.csv").write_text("id,payload\n1,one\n2,two\n")
    (directory / "b.csv").write_text("id,payload\n3,three\n")


def _write_json(directory: Path) -> None:
    lines = [{"id": 1, "payload": "one"}, {"id": 2, "payload": "two"}]
    (directory / "a.json").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (directory / "b.json").write_text(json.dumps({"id": 3, "payload": "three"}) + "\n")


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet", "avro", "orc"])
def test_reads_each_source_format_from_listed_paths(spark: SparkSession, tmp_path: Path, fmt: str) -> None:
    source = tmp_path / fmt
    if fmt == "csv":
        source.mkdir()
        _write_csv(source)
    elif fmt == "json":
        source.mkdir()
        _write_json(source)
    else:
        # Binary formats are written by Spark itself (avro needs spark-avro from jvm/pom.xml).
        spark.createDataFrame([(1, "one"), (2, "two"), (3, "three")], "id BIGINT, payload STRING").write.format(
            fmt
        ).save(str(source))
    # The executor reads an explicit file list, never a directory (exactly the planned batch).
    paths = sorted(str(path) for path in source.iterdir() if path.is_file() and not path.name.startswith(("_", ".")))
    assert paths
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").schema("id BIGINT, payload STRING")
    rows = reader.load(paths).select("id", "payload").orderBy("id").collect()
    assert [(int(row["id"]), row["payload"]) for row in rows] == [(1, "one"), (2, "two"), (3, "three")]


def test_drop_purge_deletes_files_and_the_name_can_be_reused(spark: SparkSession, namespace: str) -> None:
    table = _table(namespace)
    _create(spark, table)
    _rows(spark, 10).writeTo(table).append()
    data_files = [row["file_path"] for row in spark.sql(f"SELECT file_path FROM {table}.files").collect()]
    assert data_files
    local_paths = [Path(path.removeprefix("file:")) for path in data_files]
    assert all(path.exists() for path in local_paths)

    spark.sql(f"DROP TABLE {table} PURGE")

    assert not any(path.exists() for path in local_paths)
    assert not spark.catalog.tableExists(table)
    _create(spark, table)
    assert spark.table(table).count() == 0
    _rows(spark, 5).writeTo(table).append()
    assert spark.table(table).count() == 5


def test_wap_stages_then_cherrypick_publishes_once(spark: SparkSession, namespace: str) -> None:
    table = _table(namespace)
    _create(spark, table, wap=True)

    staged = _stage(spark, table, "ing-1:1", _rows(spark, 100))

    # Staged: recorded in the snapshots table with its wap.id, but main does not point at it.
    (snapshot,) = _snapshots(spark, table)
    assert snapshot.summary["wap.id"] == "ing-1:1"
    assert _main_snapshot_id(spark, table) is None
    assert spark.table(table).count() == 0

    # Main has not moved since staging, so publishing fast-forwards main to the staged snapshot itself.
    assert _cherrypick(spark, table, staged) == staged
    assert _main_snapshot_id(spark, table) == staged
    assert spark.table(table).count() == 100

    # Publishing again is refused inside Iceberg's commit: this is how reconcile knows "already done".
    with pytest.raises(Exception, match="DuplicateWAPCommitException") as raised:
        _cherrypick(spark, table, staged)
    assert _java_class(raised.value) == DUPLICATE_WAP
    assert "Duplicate request to cherry pick wap id that was published already: ing-1:1" in str(raised.value)
    assert spark.table(table).count() == 100


def test_wap_publish_after_main_moved_creates_a_published_snapshot(spark: SparkSession, namespace: str) -> None:
    table = _table(namespace)
    _create(spark, table, wap=True)
    staged = _stage(spark, table, "ing-1:2", _rows(spark, 10))
    _rows(spark, 5, start=1000).writeTo(table).append()  # another writer lands first

    published = _cherrypick(spark, table, staged)

    # Not a fast-forward: a new snapshot on main that names the wap id it published.
    assert published != staged
    assert staged not in _main_ancestors(spark, table)
    summaries = {s.snapshot_id: s.summary for s in _snapshots(spark, table)}
    assert summaries[published]["published-wap-id"] == "ing-1:2"
    assert spark.table(table).count() == 15
    with pytest.raises(Exception, match="DuplicateWAPCommitException"):
        _cherrypick(spark, table, staged)
    assert spark.table(table).count() == 15


def test_wap_restaged_batch_cannot_be_published_twice(spark: SparkSession, namespace: str) -> None:
    """A crash after staging redoes step 3 with the same key: only one of the two staged copies can land."""
    table = _table(namespace)
    _create(spark, table, wap=True)
    first = _stage(spark, table, "ing-1:3", _rows(spark, 10))
    second = _stage(spark, table, "ing-1:3", _rows(spark, 10))
    assert first != second

    _cherrypick(spark, table, second)
    with pytest.raises(Exception, match="DuplicateWAPCommitException"):
        _cherrypick(spark, table, first)
    assert spark.table(table).count() == 10


def _java_class(error: BaseException) -> str | None:
    # py4j's Py4JJavaError carries the JVM exception; pyspark does not translate Iceberg's own exceptions.
    java = getattr(error, "java_exception", None)
    return str(java.getClass().getName()) if java is not None else None
