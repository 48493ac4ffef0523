"""The SparkSession with the Iceberg catalog; the only module in the repo that imports pyspark.

Build one long-lived session per executor: starting one costs seconds (DESIGN §5).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from pyspark.sql import DataFrame, DataFrameReader, SparkSession

from services.executor.jars import ivy_excludes, ivy_packages

# The PostgreSQL schema that holds the Iceberg JDBC catalog's tables (iceberg_tables,
# iceberg_namespace_properties), beside the services' own schemas.
CATALOG_SCHEMA = "iceberg"
# Spark lists the paths of one read on the driver below this many paths and with a Spark job above it.
# The executor hands Spark explicit file lists (up to ~10k); a job per read is ~5x slower (DESIGN §5).
PARALLEL_DISCOVERY_THRESHOLD = 1_000_000


def to_jdbc(database_url: str) -> tuple[str, dict[str, str]]:
    """postgresql://user:pass@host:port/db?opts -> (jdbc:postgresql://host:port/db?opts, {user, password}).

    Credentials go into properties rather than the JDBC URL, so the URL can be logged.
    """
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"expected a postgresql:// URL, got scheme {parts.scheme!r}")
    host = parts.hostname or "localhost"
    if ":" in host:  # an IPv6 literal keeps its brackets in a URL
        host = f"[{host}]"
    port = parts.port or 5432
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ValueError("the database URL names no database")
    jdbc_url = f"jdbc:postgresql://{host}:{port}/{database}"
    # libpq options that pgjdbc understands under the same name (sslmode, options, ...) pass through.
    query = parse_qsl(parts.query, keep_blank_values=True)
    if query:
        jdbc_url += "?" + urlencode(query)
    properties: dict[str, str] = {}
    if parts.username:
        properties["user"] = unquote(parts.username)
    if parts.password:
        properties["password"] = unquote(parts.password)
    return jdbc_url, properties


def _with_schema(jdbc_url: str, schema: str) -> str:
    # pgjdbc sets search_path from currentSchema, so the catalog creates and finds its tables there.
    return jdbc_url + ("&" if "?" in jdbc_url else "?") + urlencode({"currentSchema": schema})


def s3a_options(
    endpoint_url: str | None, region: str | None, access_key: str | None, secret_key: str | None
) -> dict[str, str]:
    """Hadoop s3a settings (as `spark.hadoop.*` keys) for a warehouse or source on S3 or an S3-compatible store.

    With no keys the default AWS credential chain (env, profile, instance role) applies.
    """
    options: dict[str, str] = {
        # JSSE explicitly: the OpenSSL mode needs wildfly-openssl, which jvm/pom.xml leaves out.
        "fs.s3a.ssl.channel.mode": "default_jsse",
    }
    if endpoint_url:
        # S3-compatible stores (MinIO, moto) serve buckets under the path, not as virtual hosts.
        options["fs.s3a.endpoint"] = endpoint_url
        options["fs.s3a.path.style.access"] = "true"
        options["fs.s3a.connection.ssl.enabled"] = str(urlsplit(endpoint_url).scheme == "https").lower()
    if region:
        options["fs.s3a.endpoint.region"] = region
    if access_key and secret_key:
        options["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        options["fs.s3a.access.key"] = access_key
        options["fs.s3a.secret.key"] = secret_key
    return {f"spark.hadoop.{key}": value for key, value in options.items()}


def _catalog_conf(catalog: str, database_url: str, warehouse: str) -> dict[str, str]:
    jdbc_url, properties = to_jdbc(database_url)
    prefix = f"spark.sql.catalog.{catalog}"
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "jdbc",
        f"{prefix}.uri": _with_schema(jdbc_url, CATALOG_SCHEMA),
        # V0 breaks views and lookups of missing tables (DESIGN §5).
        f"{prefix}.jdbc.schema-version": "V1",
        f"{prefix}.warehouse": warehouse,
        # Every table load reads the catalog: another executor may have committed since (reconcile must
        # see it); the default cache would serve a table state up to 30 s old.
        f"{prefix}.cache-enabled": "false",
    }
    conf.update({f"{prefix}.jdbc.{key}": value for key, value in properties.items()})
    return conf


def rest_catalog_conf(catalog: str, uri: str, warehouse: str, token: str | None) -> dict[str, str]:
    """An Iceberg REST catalog (Polaris, Nessie, Gravitino, Unity, ...) instead of the JDBC one."""
    prefix = f"spark.sql.catalog.{catalog}"
    conf = {
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": "rest",
        f"{prefix}.uri": uri,
        f"{prefix}.cache-enabled": "false",
    }
    if warehouse:
        conf[f"{prefix}.warehouse"] = warehouse
    if token:
        conf[f"{prefix}.token"] = token
    return conf


def _create_catalog_schema(spark: SparkSession, database_url: str) -> None:
    """CREATE SCHEMA IF NOT EXISTS iceberg, through the same JDBC driver the catalog uses.

    pgjdbc does not create the schema named by currentSchema, and the catalog's first CREATE TABLE would fail.
    """
    jdbc_url, properties = to_jdbc(database_url)
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    info = jvm.java.util.Properties()
    for key, value in properties.items():
        info.setProperty(key, value)
    # The driver class directly: DriverManager does not see jars added through spark.jars from py4j threads.
    connection = jvm.org.postgresql.Driver().connect(jdbc_url, info)
    try:
        statement = connection.createStatement()
        statement.execute(f'CREATE SCHEMA IF NOT EXISTS "{CATALOG_SCHEMA}"')
        statement.close()
    finally:
        connection.close()


def build_spark_session(
    *,
    master: str,
    database_url: str,
    warehouse: str,
    catalog: str = "autoloader",
    jars: list[Path],
    app_name: str,
    extra_conf: Mapping[str, str] | None = None,
    rest_catalog_uri: str = "",
    rest_catalog_token: str | None = None,
) -> SparkSession:
    """A SparkSession with the Iceberg catalog `catalog` (JDBC on `database_url`) over `warehouse`.

    `jars` come from `ensure_jars`; when empty, Spark resolves the same coordinates itself with Ivy.
    `extra_conf` (e.g. `s3a_options(...)`) is applied last.
    """
    cores = os.cpu_count() or 2
    conf: dict[str, str] = {
        "spark.master": master,
        "spark.app.name": app_name,
        # Never bind to or advertise a public interface; the default host name may not even resolve.
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # The default 200 shuffle partitions are tiny tasks on a 2-core machine; AQE coalesces further.
        "spark.sql.shuffle.partitions": str(2 * cores),
        "spark.sql.sources.parallelPartitionDiscovery.threshold": str(PARALLEL_DISCOVERY_THRESHOLD),
        # Packs many small files per task instead of one task per few files (11.6 s -> 1.2 s, DESIGN §5).
        "spark.sql.files.openCostInBytes": "0",
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
    }
    if jars:
        conf["spark.jars"] = ",".join(str(jar) for jar in jars)
    else:
        conf["spark.jars.packages"] = ivy_packages()
        conf["spark.jars.excludes"] = ivy_excludes()
    if rest_catalog_uri:
        conf.update(rest_catalog_conf(catalog, rest_catalog_uri, warehouse, rest_catalog_token))
    else:
        conf.update(_catalog_conf(catalog, database_url, warehouse))
    conf.update(extra_conf or {})

    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if not rest_catalog_uri:
        _create_catalog_schema(spark, database_url)
    return spark


def load_paths(reader: DataFrameReader, paths: list[str]) -> DataFrame:
    """reader.load(paths), with the paths crossing into the JVM as one string.

    py4j converts a Python list one element per call: ~2 s for 10,000 paths, against ~0.01 s to split one
    joined string inside the JVM.
    """
    if len(paths) < 2 or any("\n" in path for path in paths):
        return reader.load(paths)
    jvm = reader._spark.sparkContext._jvm
    assert jvm is not None
    pattern = jvm.java.util.regex.Pattern
    array = pattern.compile("\n", pattern.LITERAL).split("\n".join(paths))
    return DataFrame(reader._jreader.load(array), reader._spark)
