"""Spark configuration that needs no JVM: database URL conversion, s3a options, jar coordinates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from services.executor.jars import ensure_jars, ivy_excludes, ivy_packages, pom_artifacts
from services.executor.spark_session import s3a_options, to_jdbc


@pytest.mark.parametrize(
    ("database_url", "jdbc_url", "properties"),
    [
        (
            "postgresql://postgres@127.0.0.1:5433/autoloader",
            "jdbc:postgresql://127.0.0.1:5433/autoloader",
            {"user": "postgres"},
        ),
        (
            "postgres://svc:p%40ss%3Aword@db.internal/ingest",
            "jdbc:postgresql://db.internal:5432/ingest",
            {"user": "svc", "password": "p@ss:word"},
        ),
        (
            "postgresql://u:pw@[::1]:6543/db?sslmode=require",
            "jdbc:postgresql://[::1]:6543/db?sslmode=require",
            {"user": "u", "password": "pw"},
        ),
        ("postgresql://localhost/db", "jdbc:postgresql://localhost:5432/db", {}),
    ],
)
def test_to_jdbc(database_url: str, jdbc_url: str, properties: dict[str, str]) -> None:
    assert to_jdbc(database_url) == (jdbc_url, properties)


def test_to_jdbc_keeps_credentials_out_of_the_url() -> None:
    jdbc_url, _ = to_jdbc("postgresql://svc:secret@db:5432/ingest")
    assert "secret" not in jdbc_url
    assert "svc" not in jdbc_url


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "postgresql://u@h:5432/", "not a url"])
def test_to_jdbc_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        to_jdbc(bad)


def test_s3a_options_for_an_s3_compatible_endpoint() -> None:
    options = s3a_options("http://127.0.0.1:9000", "us-east-1", "AKIA", "s3cr3t")
    assert options["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert options["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert options["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert options["spark.hadoop.fs.s3a.endpoint.region"] == "us-east-1"
    assert options["spark.hadoop.fs.s3a.access.key"] == "AKIA"
    assert options["spark.hadoop.fs.s3a.secret.key"] == "s3cr3t"
    assert (
        options["spark.hadoop.fs.s3a.aws.credentials.provider"]
        == "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
    )


def test_s3a_options_for_aws_use_the_default_credential_chain() -> None:
    options = s3a_options(None, None, None, None)
    assert all(key.startswith("spark.hadoop.fs.s3a.") for key in options)
    assert "spark.hadoop.fs.s3a.endpoint" not in options
    assert "spark.hadoop.fs.s3a.aws.credentials.provider" not in options


def test_pom_names_each_jar_once_with_properties_resolved() -> None:
    coordinates = ivy_packages().split(",")
    assert all("${" not in c and c.count(":") == 2 for c in coordinates)
    names = {c.rsplit(":", 1)[0] for c in coordinates}
    assert len(names) == len(coordinates)
    assert {
        "org.apache.iceberg:iceberg-spark-runtime-3.5_2.12",
        "org.apache.hadoop:hadoop-aws",
        "com.amazonaws:aws-java-sdk-bundle",
        "org.postgresql:postgresql",
        "org.apache.spark:spark-avro_2.12",
    } == names


def test_pom_versions_match_the_installed_pyspark() -> None:
    pyspark = pytest.importorskip("pyspark")
    versions = {a.artifact_id: a.version for a in pom_artifacts()}
    assert versions["spark-avro_2.12"] == pyspark.__version__
    bundled = Path(pyspark.__file__).parent / "jars"
    # hadoop-aws must match the Hadoop client that pyspark ships, or s3a fails at class loading.
    assert (bundled / f"hadoop-client-api-{versions['hadoop-aws']}.jar").is_file()


def test_ivy_excludes_never_exclude_a_direct_dependency() -> None:
    direct = {f"{a.group_id}:{a.artifact_id}" for a in pom_artifacts()}
    excludes = set(ivy_excludes().split(","))
    assert "org.tukaani:xz" in excludes
    assert not excludes & direct


def test_ensure_jars_uses_a_complete_cache_without_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for artifact in pom_artifacts():
        (tmp_path / artifact.jar_name).write_bytes(b"")
    monkeypatch.setattr(shutil, "which", lambda _: pytest.fail("mvn must not be looked up"))
    jars = ensure_jars(tmp_path)
    assert [jar.name for jar in jars] == [a.jar_name for a in pom_artifacts()]


def test_ensure_jars_falls_back_to_ivy_without_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    assert ensure_jars(tmp_path / "jars") == []


def test_rest_catalog_replaces_the_jdbc_one() -> None:
    from services.executor.spark_session import rest_catalog_conf

    conf = rest_catalog_conf("autoloader", "https://catalog.example/api", "s3://wh/", "secret-token")
    assert conf["spark.sql.catalog.autoloader.type"] == "rest"
    assert conf["spark.sql.catalog.autoloader.uri"] == "https://catalog.example/api"
    assert conf["spark.sql.catalog.autoloader.warehouse"] == "s3://wh/"
    assert conf["spark.sql.catalog.autoloader.token"] == "secret-token"
    assert not any(key.endswith(".jdbc.schema-version") for key in conf)
    assert "spark.sql.catalog.autoloader.warehouse" not in rest_catalog_conf("autoloader", "http://c", "", None)
