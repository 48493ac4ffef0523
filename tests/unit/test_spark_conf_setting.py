"""AUTOLOADER_SPARK_CONF: arbitrary Spark settings for a deployment (cluster managers, memory, ...)."""

from __future__ import annotations

import pytest

from services.executor.app import session_conf
from services.shared.config import ExecutorSettings, load_settings


@pytest.fixture
def executor_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setenv("AUTOLOADER_DATABASE_URL", "postgresql://u@db:5432/x")
    monkeypatch.setenv("AUTOLOADER_TRACKER_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("AUTOLOADER_TOKEN", "secret")
    monkeypatch.delenv("AUTOLOADER_SPARK_CONF", raising=False)
    monkeypatch.delenv("AUTOLOADER_WAREHOUSE", raising=False)
    return monkeypatch


def test_spark_conf_is_a_json_object_from_the_environment(executor_env: pytest.MonkeyPatch) -> None:
    executor_env.setenv("AUTOLOADER_SPARK_MASTER", "k8s://https://kubernetes.default.svc:443")
    executor_env.setenv(
        "AUTOLOADER_SPARK_CONF",
        '{"spark.kubernetes.container.image": "registry.example/autoloader-spark:3.5.9",'
        ' "spark.executor.instances": "3"}',
    )
    settings = load_settings(ExecutorSettings)
    assert settings.spark_master == "k8s://https://kubernetes.default.svc:443"
    assert settings.spark_conf == {
        "spark.kubernetes.container.image": "registry.example/autoloader-spark:3.5.9",
        "spark.executor.instances": "3",
    }


def test_without_the_variable_no_setting_is_added(executor_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(ExecutorSettings)
    assert settings.spark_conf == {}
    assert session_conf(settings) == {"spark.sql.defaultCatalog": "autoloader"}


@pytest.mark.parametrize("bad", ["not json", '["a", "b"]', '{"spark.executor.instances": {"n": 3}}'])
def test_anything_but_an_object_of_strings_is_refused_naming_the_variable(
    executor_env: pytest.MonkeyPatch, bad: str
) -> None:
    executor_env.setenv("AUTOLOADER_SPARK_CONF", bad)
    with pytest.raises(SystemExit, match="AUTOLOADER_SPARK_CONF"):
        load_settings(ExecutorSettings)


def test_spark_conf_comes_last_and_overrides_the_executors_own_settings(executor_env: pytest.MonkeyPatch) -> None:
    # On a cluster whose executors run on other machines, the driver must advertise a reachable address;
    # the session conf is applied after build_spark_session's loopback default, so this value wins.
    executor_env.setenv("AUTOLOADER_WAREHOUSE", "s3a://lake/warehouse")
    executor_env.setenv("AUTOLOADER_WAREHOUSE_ENDPOINT_URL", "http://minio:9000")
    executor_env.setenv(
        "AUTOLOADER_SPARK_CONF",
        '{"spark.driver.host": "autoloader-executor.data.svc",'
        ' "spark.hadoop.fs.s3a.bucket.lake.endpoint": "http://minio.internal:9000"}',
    )
    conf = session_conf(load_settings(ExecutorSettings))
    assert conf["spark.driver.host"] == "autoloader-executor.data.svc"
    assert conf["spark.hadoop.fs.s3a.bucket.lake.endpoint"] == "http://minio.internal:9000"
    assert conf["spark.sql.defaultCatalog"] == "autoloader"
