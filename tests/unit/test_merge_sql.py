"""The SQL text of write_mode "merge": batch statistics, duplicate examples, latest row per key and the MERGE
statement. Only built here, not run: the tests check the clauses that carry the semantics."""

from __future__ import annotations

import pytest

from services.executor.merge_sql import (
    ROW_NUMBER,
    MergeSpec,
    duplicate_examples_sql,
    latest_per_key_sql,
    merge_sql,
    stats_sql,
)

ODD_KEYS = MergeSpec(keys=("id", "we`ird key"), order_by="updated`at")


# ------------------------------------------------------------------------------ stats_sql


def test_stats_counts_null_keys_over_every_key() -> None:
    sql = stats_sql("batch_view", ODD_KEYS)
    assert "count_if(`id` IS NULL OR `we``ird key` IS NULL) AS null_keys" in sql
    assert "count(DISTINCT `id`, `we``ird key`) AS distinct_keys" in sql
    assert sql.startswith("SELECT count(*) AS rows, ")
    assert sql.endswith(" FROM batch_view")


def test_stats_single_key_has_no_or() -> None:
    sql = stats_sql("v", MergeSpec(keys=("id",)))
    assert "count_if(`id` IS NULL) AS null_keys" in sql
    assert "count(DISTINCT `id`) AS distinct_keys" in sql
    assert " OR " not in sql


# ------------------------------------------------------------------------------ duplicate_examples_sql


def test_duplicate_examples_group_by_every_key() -> None:
    sql = duplicate_examples_sql("batch_view", ODD_KEYS)
    assert sql.startswith("SELECT `id`, `we``ird key`, count(*) AS occurrences FROM batch_view ")
    assert " GROUP BY `id`, `we``ird key` HAVING count(*) > 1" in sql
    assert sql.endswith(" ORDER BY occurrences DESC LIMIT 3")


def test_duplicate_examples_limit() -> None:
    assert duplicate_examples_sql("v", MergeSpec(keys=("id",)), limit=10).endswith(" LIMIT 10")


# ------------------------------------------------------------------------------ latest_per_key_sql


def test_latest_per_key_partitions_by_every_key_and_orders_newest_first() -> None:
    sql = latest_per_key_sql("batch_view", ODD_KEYS, ["id", "we`ird key", "value"])
    assert (
        f"row_number() OVER (PARTITION BY `id`, `we``ird key` ORDER BY `updated``at` DESC NULLS LAST) AS {ROW_NUMBER}"
        in sql
    )
    assert f" FROM batch_view) WHERE {ROW_NUMBER} = 1" in sql


def test_latest_per_key_selects_only_the_given_columns_in_order() -> None:
    sql = latest_per_key_sql("v", ODD_KEYS, ["value", "id", "we`ird key"])
    assert sql.startswith("SELECT `value`, `id`, `we``ird key` FROM (SELECT *, row_number()")
    # The helper column stays inside the subquery.
    assert sql.split(" FROM (", 1)[0].count(ROW_NUMBER) == 0


# ------------------------------------------------------------------------------ merge_sql


def test_merge_matches_on_every_key() -> None:
    sql = merge_sql("cat.db.orders", "SELECT * FROM v", ODD_KEYS)
    assert sql.startswith("MERGE INTO cat.db.orders AS t USING (SELECT * FROM v) AS s ON ")
    assert " ON t.`id` = s.`id` AND t.`we``ird key` = s.`we``ird key` WHEN MATCHED" in sql
    assert sql.endswith(" WHEN NOT MATCHED THEN INSERT *")


def test_merge_without_order_by_updates_every_match() -> None:
    sql = merge_sql("t1", "SELECT * FROM v", MergeSpec(keys=("id",)))
    assert sql == "MERGE INTO t1 AS t USING (SELECT * FROM v) AS s ON t.`id` = s.`id`" + (
        " WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    assert "IS NULL" not in sql


def test_merge_with_order_by_only_replaces_with_rows_not_older() -> None:
    sql = merge_sql("t1", "SELECT * FROM v", ODD_KEYS)
    assert " WHEN MATCHED AND (t.`updated``at` IS NULL OR s.`updated``at` >= t.`updated``at`) THEN UPDATE SET *" in sql


@pytest.mark.parametrize("order_by", ["", "ts"])
def test_merge_guard_present_only_with_order_by(order_by: str) -> None:
    sql = merge_sql("t1", "SELECT * FROM v", MergeSpec(keys=("id",), order_by=order_by))
    assert (" WHEN MATCHED AND (" in sql) is bool(order_by)
    assert sql.count("WHEN MATCHED") == 1
