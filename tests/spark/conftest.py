"""A real SparkSession with the Iceberg JDBC catalog on the test PostgreSQL, shared by the whole session.

Starting Spark costs seconds, so one session serves every test; each test works in its own namespace.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from services.executor.jars import ensure_jars
from services.executor.spark_session import build_spark_session

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CATALOG = "autoloader"


def jar_cache_dir() -> Path:
    # Outside the tmp dirs so the ~330 MB of jars are resolved once per machine, not once per run.
    configured = os.environ.get("AUTOLOADER_JAR_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "autoloader" / "jars"


@pytest.fixture(scope="session")
def spark(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    warehouse = tmp_path_factory.mktemp("warehouse")
    session = build_spark_session(
        master="local[2]",
        database_url=postgres_url,
        warehouse=str(warehouse),
        catalog=CATALOG,
        jars=ensure_jars(jar_cache_dir()),
        app_name="autoloader-tests",
    )
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def namespace(spark: SparkSession) -> Iterator[str]:
    """A fresh namespace `autoloader.t_<hex>`, dropped with its tables afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    spark.sql(f"CREATE NAMESPACE {CATALOG}.{name}")
    try:
        yield name
    finally:
        for row in spark.sql(f"SHOW TABLES IN {CATALOG}.{name}").collect():
            spark.sql(f"DROP TABLE {CATALOG}.{name}.{row['tableName']} PURGE")
        spark.sql(f"DROP NAMESPACE {CATALOG}.{name}")
