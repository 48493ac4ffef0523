"""Replaying a merge batch on the real loader: a staged merge is published once, a stale one is written again.

A merge rewrites the rows of the table as it was when it was staged. If someone commits to the table between
staging and publishing (another writer, or a takeover after a long pause), publishing the old snapshot would
undo that commit; the loader must write the batch again on the current table instead, still exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pyspark.sql import SparkSession

from services.executor.load import BatchSpec, TableLoader
from services.executor.merge_sql import MergeSpec
from services.tracker.models import FileEntry
from tests.spark.conftest import CATALOG


def batch(source: Path, table: str, key: str) -> BatchSpec:
    (source / "b.csv").write_text("id,name,version\n1,ann-2,2\n3,cy,1\n")
    entry = FileEntry(key="b.csv", etag="e1", size=(source / "b.csv").stat().st_size, last_modified=datetime.now(UTC))
    return BatchSpec(
        run_id="run-test",
        batch_key=key,
        files_hash="hash",
        files=[entry],
        source_uri=source.as_uri() + "/",
        file_format="csv",
        options={"header": "true", "inferSchema": "true"},
        table=table,
        merge=MergeSpec(keys=("id",), order_by="version"),
    )


def people(spark: SparkSession, namespace: str, values: str) -> str:
    """A WAP-enabled table (id, name, version) holding the given rows; its name without the catalog."""
    table = f"{namespace}.people"
    spark.sql(
        f"CREATE TABLE {CATALOG}.{table} (id INT, name STRING, version INT) USING iceberg"
        " TBLPROPERTIES ('write.wap.enabled'='true')"
    )
    spark.sql(f"INSERT INTO {CATALOG}.{table} VALUES {values}")
    return table


def rows(spark: SparkSession, table: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in spark.sql(f"SELECT id, name, version FROM {CATALOG}.{table} ORDER BY id").collect()]


def test_a_stale_staged_merge_is_written_again_on_the_current_table(
    spark: SparkSession, namespace: str, tmp_path: Path
) -> None:
    table = people(spark, namespace, "(1, 'ann', 1), (2, 'bob', 1)")
    loader = TableLoader(spark, CATALOG)
    spec = batch(tmp_path, table, "people:7")

    staged = loader._stage(spec, spec.files)  # an executor staged the merge, then stalled before publishing
    assert staged is not None and loader.published_snapshot(table, spec.batch_key) is None
    spark.sql(f"INSERT INTO {CATALOG}.{table} VALUES (4, 'dee', 1, NULL, NULL)")  # another commit lands

    result = loader.load(spec)

    assert result.snapshot_id is not None and result.snapshot_id != staged, "the stale snapshot was published"
    assert result.rows_written == 2
    assert rows(spark, table) == [(1, "ann-2", 2), (2, "bob", 1), (3, "cy", 1), (4, "dee", 1)]
    # Loading the same batch again finds it published and changes nothing.
    assert loader.load(spec).snapshot_id == result.snapshot_id
    assert rows(spark, table) == [(1, "ann-2", 2), (2, "bob", 1), (3, "cy", 1), (4, "dee", 1)]


def test_a_current_staged_merge_is_published_without_writing_again(
    spark: SparkSession, namespace: str, tmp_path: Path
) -> None:
    table = people(spark, namespace, "(1, 'ann', 1)")
    loader = TableLoader(spark, CATALOG)
    spec = batch(tmp_path, table, "people:8")
    staged = loader._stage(spec, spec.files)

    result = loader.load(spec)

    assert result.snapshot_id == staged  # fast-forwarded: the staged snapshot itself is now current
    assert rows(spark, table) == [(1, "ann-2", 2), (3, "cy", 1)]
    snapshots = spark.sql(f"SELECT count(*) FROM {CATALOG}.{table}.snapshots").collect()[0][0]
    assert snapshots == 2  # the insert and the one staged merge: the batch was not written a second time
