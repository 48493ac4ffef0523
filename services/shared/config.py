"""Settings objects, built once at start from AUTOLOADER_* environment variables (never at import)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.shared.local_sources import LocalSourcePolicy
from services.shared.outbound_http import AddressPolicy


def default_home() -> Path:
    return Path("~/.autoloader").expanduser()


def load_settings(settings_type: type[SettingsT]) -> SettingsT:
    """Build a settings object from the environment; a bad or missing variable ends the process with a
    message naming it (AUTOLOADER_<FIELD>), not a traceback."""
    try:
        return settings_type()
    except ValidationError as error:
        problems = "; ".join(
            f"AUTOLOADER_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in error.errors()
        )
        raise SystemExit(f"configuration error: {problems}") from None


def default_jar_cache() -> Path:
    """AUTOLOADER_JAR_CACHE, else ~/.cache/autoloader/jars: shared by every stack and test run of a user."""
    configured = os.environ.get("AUTOLOADER_JAR_CACHE")
    return Path(configured).expanduser() if configured else Path("~/.cache/autoloader/jars").expanduser()


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTOLOADER_", frozen=True, extra="ignore")

    home: Path = Field(
        default_factory=default_home,
        description="Directory of local state, such as the default secret-key file and warehouse",
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING, ERROR; logs are JSON lines on stderr")
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate this process serves (gRPC or HTTPS); with tls_key_file turns TLS on"
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file")
    tls_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle that signs the other services' certificates; set it to call them over TLS."
        " Servers with tls_client_auth also check callers' client certificates against it",
    )
    tls_client_auth: bool = Field(
        False, description="Mutual TLS: servers require a client certificate signed by tls_ca_file"
    )


SettingsT = TypeVar("SettingsT", bound=CommonSettings)


class ServiceSettings(CommonSettings):
    """Settings of one gRPC service process (control, tracker or executor)."""

    database_url: SecretStr = Field(description="PostgreSQL URL, e.g. postgresql://user:pw@host:5432/autoloader")
    grpc_host: str = Field("127.0.0.1", description="Address the gRPC server binds to")
    grpc_port: int = Field(0, ge=0, le=65535, description="gRPC port; 0 picks a free one")
    port_file: Path | None = Field(
        None, description="If set, the bound gRPC port is written here once the server is serving"
    )
    db_pool_max_size: int = Field(10, ge=1, description="Largest number of pooled database connections of this process")
    shutdown_grace_seconds: float = Field(
        5.0, ge=0, description="How long RPCs in flight (and an executor's run) may finish on SIGTERM"
    )
    metrics_port: int = Field(
        0, ge=-1, le=65535, description="Port of the Prometheus /metrics endpoint; 0 picks a free one, -1 turns it off"
    )
    webhook_allowlist: str = Field(
        "",
        description="Comma-separated addresses or CIDR ranges (optionally :port) webhooks may reach although"
        " they are loopback, private or link-local, e.g. 127.0.0.1:9000,10.0.0.0/8",
    )

    endpoint_allowlist: str = Field(
        "",
        description="Comma-separated addresses or CIDR ranges (optionally :port) a source's custom S3 endpoint"
        " may reach although they are loopback, private or link-local, e.g. 127.0.0.1:9000,10.0.0.0/8",
    )
    secret_keys: SecretStr | None = Field(
        None,
        description="Comma-separated Fernet keys that encrypt stored secrets (webhook secrets); the first"
        " encrypts, all decrypt, so a new key goes first to rotate. Default: a key kept in $AUTOLOADER_HOME",
    )
    secret_keys_file: Path | None = Field(
        None, description="File holding secret_keys (comma- or line-separated) instead of the variable"
    )
    local_source_roots: str = Field(
        "*",
        description="Directories file:// sources may read, comma-separated; '*' any, empty none. Whatever it"
        " says, the service's own home directory and every directory above it are never readable",
    )

    @field_validator("local_source_roots")
    @classmethod
    def _check_local_source_roots(cls, value: str) -> str:
        LocalSourcePolicy.from_setting(value, Path("/"))  # raises on a relative directory
        return value

    def outbound_policy(self) -> AddressPolicy:
        return AddressPolicy.from_allowlist(e.strip() for e in self.webhook_allowlist.split(",") if e.strip())

    def local_source_policy(self) -> LocalSourcePolicy:
        return LocalSourcePolicy.from_setting(self.local_source_roots, self.home)

    def endpoint_policy(self) -> AddressPolicy:
        return AddressPolicy.from_allowlist(e.strip() for e in self.endpoint_allowlist.split(",") if e.strip())


class TrackerSettings(ServiceSettings):
    """Settings of a tracker service process."""

    webhook_poll_seconds: float = Field(1.0, gt=0, description="How often due webhook deliveries are looked for")
    webhook_backoff_seconds: float = Field(
        2.0, gt=0, description="Wait after a webhook's first failed attempt; doubled after each further one"
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="How long one webhook attempt may take")


class ControlSettings(ServiceSettings):
    """Settings of a control service process."""

    tracker_address: str = Field(description="host:port of the tracker service")
    token: SecretStr = Field(
        description="Service token (admin role) control calls the tracker with, after checking the caller's rights"
    )
    schedule_poll_seconds: float = Field(5.0, gt=0, description="How often the scheduler looks for due schedules")
    preview_timeout_seconds: float = Field(
        60.0, gt=0, description="How long a preview waits for an executor to list the source"
    )


class ExecutorSettings(ServiceSettings):
    """Settings of an executor process."""

    spark_master: str = Field("local[*]", description="Spark master: local[*], spark://host:7077 or k8s://...")
    tracker_address: str = Field(description="host:port of the tracker service")
    token: SecretStr = Field(description="Service token (admin role) the executor sends to the tracker")
    warehouse: str = Field(
        "", description="Iceberg warehouse: a local path or s3a://; default $AUTOLOADER_HOME/warehouse"
    )
    warehouse_endpoint_url: str = Field("", description="S3-compatible endpoint of an s3a:// warehouse")
    warehouse_region: str = Field("", description="Region of an s3a:// warehouse")
    warehouse_credentials_ref: str = Field(
        "", description="S3 keys of an s3a:// warehouse: env:NAME, file:/path or profile:NAME; empty = AWS chain"
    )
    catalog: str = Field("autoloader", description="Name of the Iceberg catalog in Spark SQL (`autoloader sql`)")
    rest_catalog_uri: str = Field(
        "", description="URL of an Iceberg REST catalog to use instead of the JDBC catalog on the database"
    )
    rest_catalog_token: SecretStr | None = Field(None, description="Bearer token for the REST catalog")
    jar_cache: Path | None = Field(None, description="Where the JVM jars are cached; default ~/.cache/autoloader/jars")
    lease_seconds: int = Field(30, ge=5, le=3600, description="Run lease; renewed every third of it")
    poll_seconds: float = Field(1.0, gt=0, description="How often an idle executor asks for a run")
    worker_enabled: bool = Field(True, description="Take queued runs; false: only serve RPCs such as SQL")
    # NoDecode: the validator below parses the JSON, so bad JSON is reported like any other bad value.
    spark_conf: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Further Spark settings as a JSON object of strings, applied last (they override the"
        " executor's own),"
        ' e.g. {"spark.executor.memory": "4g", "spark.kubernetes.container.image": "..."}',
    )

    @field_validator("spark_conf", mode="before")
    @classmethod
    def _parse_spark_conf(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as error:
                raise ValueError(f"not a JSON object: {error}") from None
        return value

    def warehouse_location(self) -> str:
        return self.warehouse or str(self.home / "warehouse")

    def jar_directory(self) -> Path:
        return self.jar_cache or default_jar_cache()


class GatewaySettings(CommonSettings):
    """Settings of the REST gateway."""

    http_host: str = Field("127.0.0.1", description="Address the HTTP server binds to")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port; 0 picks a free one")
    port_file: Path | None = Field(None, description="If set, the bound HTTP port is written here once serving")
    control_address: str = Field(description="host:port of the control service")
    tracker_address: str = Field(description="host:port of the tracker service")
    executor_address: str = Field("", description="host:port of the executor service (health only)")
    max_body_bytes: int = Field(
        1_048_576, ge=1, description="Largest accepted request body; a larger one is refused with 413"
    )
    rate_limit_per_second: float = Field(
        50.0,
        ge=0,
        allow_inf_nan=False,
        description="Requests per second each caller (bearer token, or client address without one) may make"
        " on average, beyond which it gets 429; 0 turns the limit off",
    )
    rate_limit_burst: int = Field(
        100, ge=1, description="Requests a caller may make at once before the per-second rate applies"
    )
