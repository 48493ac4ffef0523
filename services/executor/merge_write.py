"""Run write_mode "merge" for one batch: check the keys, keep the latest row per key, MERGE INTO the table.

The loader has already set `spark.wap.id`, so the MERGE's commit is staged like an append's; the batch's
snapshot properties travel through Iceberg's CommitMetadata because a SQL statement takes no writer options.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

from services.executor.merge_sql import MergeSpec, duplicate_examples_sql, latest_per_key_sql, merge_sql, stats_sql
from services.executor.schema_policy import BatchRefused

ROWS_PROPERTY = "autoloader.rows"


def merge_batch(spark: Any, table_sql: str, merge: MergeSpec, frame: Any, properties: dict[str, str]) -> None:
    """Upsert the batch by its keys; refuse it (writing nothing) when a key is missing or ambiguous."""
    view = f"autoloader_batch_{uuid.uuid4().hex}"
    # The checks and the MERGE each scan the batch: keep it after the first read (spilling to disk).
    frame = frame.persist()
    frame.createOrReplaceTempView(view)
    try:
        stats = spark.sql(stats_sql(view, merge)).collect()[0]
        if stats["null_keys"]:
            raise BatchRefused(
                f"destination.merge_keys: {stats['null_keys']} row(s) have no value in a key column"
                f" ({', '.join(merge.keys)}); a row without its key cannot be merged. Nothing was written"
            )
        duplicates = stats["rows"] - stats["distinct_keys"]
        if duplicates and not merge.order_by:
            examples = spark.sql(duplicate_examples_sql(view, merge)).collect()
            shown = "; ".join(
                ", ".join(f"{k}={row[k]!r}" for k in merge.keys) + f" ({row['occurrences']} times)" for row in examples
            )
            raise BatchRefused(
                f"destination.merge_keys: {duplicates} row(s) repeat a key within this batch (e.g. {shown});"
                " set destination.merge_order_by to keep the latest row of each key. Nothing was written"
            )
        source = latest_per_key_sql(view, merge, frame.columns) if merge.order_by else f"SELECT * FROM {view}"
        with commit_properties(spark, {**properties, ROWS_PROPERTY: str(stats["distinct_keys"])}):
            spark.sql(merge_sql(table_sql, source, merge))
    finally:
        spark.catalog.dropTempView(view)
        frame.unpersist()


@contextlib.contextmanager
def commit_properties(spark: Any, properties: dict[str, str]) -> Iterator[None]:
    """Snapshot properties for SQL writes in this block: Iceberg's CommitMetadata keeps them per JVM thread,
    and PySpark pins each Python thread to one JVM thread."""
    jvm = spark.sparkContext._jvm
    # The class comes from Spark's jar class loader, which py4j's class lookup goes through.
    holder = jvm.org.apache.iceberg.spark.CommitMetadata._java_lang_class.getDeclaredField("COMMIT_PROPERTIES")
    holder.setAccessible(True)
    thread_local = holder.get(None)
    values = jvm.java.util.HashMap()
    for key, value in properties.items():
        values.put(key, value)
    thread_local.set(values)
    try:
        yield
    finally:
        thread_local.set(jvm.java.util.HashMap())
