"""Settings objects, built once at start from AUTOLOADER_* environment variables (never at import)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path("~/.autoloader").expanduser()


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTOLOADER_", frozen=True, extra="ignore")

    home: Path = Field(default_factory=default_home, description="Directory for local state")
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR")


class ServiceSettings(CommonSettings):
    """Settings of one gRPC service process (control, tracker or executor)."""

    database_url: SecretStr = Field(description="PostgreSQL URL, e.g. postgresql://user:pw@host:5432/autoloader")
    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds to")
    grpc_port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    port_file: Path | None = Field(
        None, description="If set, the bound gRPC port is written here once the server is serving"
    )
    db_pool_max_size: int = Field(10, ge=1, description="Largest number of pooled database connections")
    shutdown_grace_seconds: float = Field(5.0, ge=0, description="How long in-flight RPCs may finish on SIGTERM")


class ExecutorSettings(ServiceSettings):
    """Settings of an executor process."""

    spark_master: str = Field("local[*]", description="Spark master: local[*], spark://host:7077 or k8s://...")


class GatewaySettings(CommonSettings):
    """Settings of the REST gateway."""

    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds to")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port; 0 picks a free one")
    port_file: Path | None = Field(None, description="If set, the bound HTTP port is written here once serving")
    control_address: str = Field(description="host:port of the control service")
    tracker_address: str = Field(description="host:port of the tracker service")
    executor_address: str = Field("", description="host:port of the executor service (health only)")
    max_body_bytes: int = Field(1_048_576, ge=1, description="Largest accepted request body")
