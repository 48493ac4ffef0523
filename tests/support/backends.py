"""Where the storage contract tests find PostgreSQL and S3, from one of two providers each:

- `local`: the servers this suite starts itself (the embedded PostgreSQL of the `postgres_url` fixture, moto's
  S3 server from tests/support/s3.py), so every machine runs the contract;
- `container`: throwaway Docker containers through testcontainers (PostgreSQL, MinIO), where a Docker engine
  answers. Where none does, the test is skipped with the engine's address and the error it gave.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import pytest
from botocore.config import Config

from tests.support.s3 import running_s3_server

# The major version the embedded server runs, so both providers test the same PostgreSQL.
POSTGRES_IMAGE = "postgres:18-alpine"
MINIO_REGION = "us-east-1"
PING_TIMEOUT_SECONDS = 5
DEFAULT_DOCKER_SOCKET = "unix:///var/run/docker.sock"


@functools.cache
def docker_engine_refusal() -> str | None:
    """None when a Docker engine answers a ping, else why not; asked once per test session."""
    from testcontainers.core.docker_client import DockerClient, get_docker_host

    # Ask where and how testcontainers would connect: DOCKER_HOST, ~/.testcontainers.properties, the docker
    # context, else the default socket.
    host = get_docker_host()
    where = host or f"the default socket ({DEFAULT_DOCKER_SOCKET})"
    try:
        client = DockerClient(timeout=PING_TIMEOUT_SECONDS).client
        try:
            client.ping()
        finally:
            client.close()
    except Exception as e:  # whatever the failure, the answer is the same: no engine to start containers on
        return f"no Docker engine answers at {where}: {type(e).__name__}: {e}"
    return None


def require_docker() -> None:
    refusal = docker_engine_refusal()
    if refusal is not None:
        pytest.skip(refusal)


def _on_loopback_address(url: str) -> str:
    """The URL with `localhost` written as 127.0.0.1: the test stacks allowlist that address, and localhost
    may resolve to ::1 first. Docker publishes ports on both."""
    parts = urlsplit(url)
    if parts.hostname != "localhost":
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace("localhost", "127.0.0.1", 1)))


# --- PostgreSQL ---------------------------------------------------------------------------------------


@contextmanager
def postgres_server(provider: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a database on a PostgreSQL server whose user may create databases."""
    if provider == "local":
        yield request.getfixturevalue("postgres_url")
        return
    require_docker()
    from testcontainers.community.postgres import PostgresContainer

    with PostgresContainer(POSTGRES_IMAGE, driver=None) as container:
        yield _on_loopback_address(container.get_connection_url())


# --- S3 -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Store:
    """An S3 API endpoint and credentials, also exported as <credentials_name>_ACCESS_KEY_ID / _SECRET_ACCESS_KEY
    so that an ingestion reaches them with `credentials_ref = env:<credentials_name>`."""

    provider: str
    endpoint_url: str
    region: str
    access_key: str
    secret_key: str
    credentials_name: str

    @property
    def credentials_ref(self) -> str:
        return f"env:{self.credentials_name}"

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
        )

    def fresh_bucket(self) -> str:
        bucket = f"contract-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def source(self, bucket: str, prefix: str) -> dict[str, Any]:
        """The `source` fields of an ingestion that reads s3://bucket/prefix/ from this store."""
        return {
            "uri": f"s3://{bucket}/{prefix.strip('/')}/",
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "credentials_ref": self.credentials_ref,
        }


@contextmanager
def _exported(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration, then restore what was there."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def s3_store(provider: str, credentials_name: str = "AUTOLOADER_TEST_S3_CONTRACT") -> Iterator[S3Store]:
    """An S3 API endpoint for the duration: moto in this process, or a MinIO container."""
    if provider == "local":
        with running_s3_server(credentials_name) as server:
            yield S3Store(
                "local", server.endpoint_url, server.region, server.access_key, server.secret_key, credentials_name
            )
        return
    require_docker()
    from testcontainers.community.minio import MinioContainer

    # No image named: MinioContainer's default is the release its readiness check and settings were written for.
    with MinioContainer() as container:
        config = container.get_config()
        store = S3Store(
            "container",
            _on_loopback_address(f"http://{config['endpoint']}"),
            MINIO_REGION,
            config["access_key"],
            config["secret_key"],
            credentials_name,
        )
        exported = {
            f"{credentials_name}_ACCESS_KEY_ID": store.access_key,
            f"{credentials_name}_SECRET_ACCESS_KEY": store.secret_key,
        }
        with _exported(exported):
            yield store
