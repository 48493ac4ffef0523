"""A real S3 API server for integration tests: moto's server on 127.0.0.1 and a dynamic port.

moto accepts any credentials, so the keys below are made up; they are exported as
`<NAME>_ACCESS_KEY_ID` / `<NAME>_SECRET_ACCESS_KEY`, which an ingestion reaches with
`source.credentials_ref = "env:<NAME>"` (the in-process executor reads this process's environment).
moto serves ~100-150 PUT/s (DESIGN §5): keep the data sets small and do not benchmark S3 with it.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

CREDENTIALS_NAME = "AUTOLOADER_TEST_S3"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running S3-compatible endpoint, a client for it, and the credentials reference to use."""

    endpoint_url: str
    region: str
    credentials_name: str
    access_key: str
    secret_key: str
    client: Any
    server: ThreadedMotoServer

    def pause(self) -> None:
        """Stop serving and close the socket (connections are refused); the objects stay in this process."""
        self.server.stop()
        self.server._server.server_close()  # shutdown() alone leaves the port accepting, unanswered

    def resume(self) -> None:
        """Serve again on the same port, with the same objects."""
        host, port = self.endpoint_url.removeprefix("http://").rsplit(":", 1)
        self.server = ThreadedMotoServer(ip_address=host, port=int(port), verbose=False)
        self.server.start()

    @property
    def credentials_ref(self) -> str:
        return f"env:{self.credentials_name}"

    def source(self, bucket: str, prefix: str) -> dict[str, Any]:
        """The `source` fields of an ingestion that reads s3://bucket/prefix/ through this server."""
        return {
            "uri": f"s3://{bucket}/{prefix.strip('/')}/",
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "credentials_ref": self.credentials_ref,
        }

    def create_bucket(self, name: str | None = None) -> str:
        bucket = name or f"itest-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(Bucket=bucket)
        return bucket

    def put_object(self, bucket: str, key: str, body: bytes | str) -> str:
        """Upload one object; return its ETag (without quotes)."""
        data = body.encode() if isinstance(body, str) else body
        response = self.client.put_object(Bucket=bucket, Key=key, Body=data)
        return str(response["ETag"]).strip('"')

    def list_keys(self, bucket: str, prefix: str = "") -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys


@contextmanager
def running_s3_server(credentials_name: str = CREDENTIALS_NAME) -> Iterator[S3Server]:
    """Start moto's S3 server on 127.0.0.1:<free port>, export its credentials, stop and restore on exit."""
    # werkzeug logs every request to stderr at INFO; Spark's range reads would flood the test output.
    werkzeug = logging.getLogger("werkzeug")
    saved_level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint_url = f"http://{host}:{port}"
    access_key, secret_key = "itest-access-key", "itest-secret-key"
    names = {f"{credentials_name}_ACCESS_KEY_ID": access_key, f"{credentials_name}_SECRET_ACCESS_KEY": secret_key}
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update(names)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"}),
    )
    try:
        running = S3Server(endpoint_url, REGION, credentials_name, access_key, secret_key, client, server)
        yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        running.server.stop()
        werkzeug.setLevel(saved_level)
