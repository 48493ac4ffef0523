"""The SQL of write_mode "merge": batch checks, latest-row-per-key, and the MERGE INTO statement.

Only text building here; the loader runs it. Keys are compared with `=`: a row without a full key could
never be matched again, so such rows are refused before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.shared.spark_types import quote

ROW_NUMBER = "__autoloader_row"


@dataclass(frozen=True)
class MergeSpec:
    keys: tuple[str, ...]
    order_by: str = ""


def stats_sql(view: str, merge: MergeSpec) -> str:
    """One pass over the batch: rows, rows with a null key, distinct keys."""
    keys = ", ".join(quote(k) for k in merge.keys)
    any_null = " OR ".join(f"{quote(k)} IS NULL" for k in merge.keys)
    return (
        f"SELECT count(*) AS rows, count_if({any_null}) AS null_keys, count(DISTINCT {keys}) AS distinct_keys"
        f" FROM {view}"
    )


def duplicate_examples_sql(view: str, merge: MergeSpec, limit: int = 3) -> str:
    keys = ", ".join(quote(k) for k in merge.keys)
    return (
        f"SELECT {keys}, count(*) AS occurrences FROM {view} GROUP BY {keys} HAVING count(*) > 1"
        f" ORDER BY occurrences DESC LIMIT {limit}"
    )


def latest_per_key_sql(view: str, merge: MergeSpec, columns: list[str]) -> str:
    """The batch with one row per key: the one with the greatest ordering value (nulls lose)."""
    keys = ", ".join(quote(k) for k in merge.keys)
    selected = ", ".join(quote(c) for c in columns)
    return (
        f"SELECT {selected} FROM (SELECT *, row_number() OVER (PARTITION BY {keys}"
        f" ORDER BY {quote(merge.order_by)} DESC NULLS LAST) AS {ROW_NUMBER} FROM {view})"
        f" WHERE {ROW_NUMBER} = 1"
    )


def merge_sql(table: str, source: str, merge: MergeSpec) -> str:
    """Upsert the source into the table. With an ordering column, an existing row is only replaced by one
    that is not older, so a late file cannot undo a newer change."""
    on = " AND ".join(f"t.{quote(k)} = s.{quote(k)}" for k in merge.keys)
    newer = ""
    if merge.order_by:
        column = quote(merge.order_by)
        newer = f" AND (t.{column} IS NULL OR s.{column} >= t.{column})"
    return (
        f"MERGE INTO {table} AS t USING ({source}) AS s ON {on}"
        f" WHEN MATCHED{newer} THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
