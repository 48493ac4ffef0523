"""List the files of a source: a local directory or an S3 prefix. The only module that imports boto3.

Keys are relative to the source URI. The glob pattern, when set, is matched against that relative key
(`*` stays within one path segment, `**` crosses segments).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.shared.errors import FailedPrecondition
from services.tracker.models import FileEntry


@dataclass(frozen=True)
class S3Access:
    """How to reach an S3 source: endpoint, region and resolved credentials (None: default AWS chain)."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a glob into a regex over relative keys: ** any depth, * and ? within a segment, [..] sets."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif char == "*":
            out.append("[^/]*")
            i += 1
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(char))
                i += 1
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                out.append("[^" + body[1:] + "]" if body.startswith("!") else "[" + body + "]")
                i = end + 1
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def _matches(pattern: re.Pattern[str] | None, key: str) -> bool:
    return pattern is None or bool(pattern.match(key))


def _is_hidden(key: str) -> bool:
    # Spark ignores files whose names start with _ or . (e.g. _SUCCESS, .crc); so do we.
    return any(part.startswith(("_", ".")) for part in key.split("/"))


def list_local(uri: str, pattern: str) -> Iterator[FileEntry]:
    root = Path(unquote(urlsplit(uri).path))
    if not root.is_dir():
        raise FailedPrecondition(f"source.uri: directory {root} does not exist")
    regex = glob_to_regex(pattern) if pattern else None
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            key = path.relative_to(root).as_posix()
            if _is_hidden(key) or not _matches(regex, key):
                continue
            stat = path.stat()
            # No content hash for local files: size + mtime identify a version, as S3's ETag does there.
            yield FileEntry(
                key=key,
                etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
                size=stat.st_size,
                last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
            )


def s3_client(access: S3Access) -> object:
    import boto3  # imported here: local-only setups never load it
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=access.endpoint_url or None,
        region_name=access.region or "us-east-1",
        aws_access_key_id=access.access_key,
        aws_secret_access_key=access.secret_key,
        # A store that is down fails the listing in seconds, not after minutes of default timeouts.
        config=Config(
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path"},
            connect_timeout=10,
            read_timeout=60,
        ),
    )


def profile_credentials(profile: str) -> tuple[str, str]:
    import boto3

    credentials = boto3.Session(profile_name=profile).get_credentials()
    if credentials is None:
        raise FailedPrecondition(f"source.credentials_ref: AWS profile {profile!r} has no credentials")
    frozen = credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key


def list_s3(uri: str, pattern: str, access: S3Access) -> Iterator[FileEntry]:
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(uri)
    bucket, prefix = parts.netloc, parts.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    regex = glob_to_regex(pattern) if pattern else None
    client = s3_client(access)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)  # type: ignore[attr-defined]
        for page in pages:
            for item in page.get("Contents", []):
                key = item["Key"][len(prefix) :]
                if not key or key.endswith("/") or _is_hidden(key) or not _matches(regex, key):
                    continue
                yield FileEntry(
                    key=key,
                    etag=item["ETag"].strip('"'),
                    size=item["Size"],
                    last_modified=item["LastModified"],
                )
    except (ClientError, BotoCoreError) as e:
        raise FailedPrecondition(f"source.uri: cannot list {uri}: {e}") from e


def list_source(uri: str, pattern: str, access: S3Access) -> Iterator[FileEntry]:
    scheme = urlsplit(uri).scheme
    if scheme == "file":
        return list_local(uri, pattern)
    if scheme == "s3":
        return list_s3(uri, pattern, access)
    raise FailedPrecondition(f"source.uri: unsupported scheme {scheme}")


def file_location(uri: str, key: str) -> str:
    """Where Spark reads a key: file:///dir/key, or s3a://bucket/prefix/key for s3:// sources."""
    base = uri if uri.endswith("/") else uri + "/"
    if base.startswith("s3://"):
        return "s3a://" + base[len("s3://") :] + key
    # The listing reads the decoded path (a URI may encode spaces as %20); Spark must read the same one.
    return "file://" + unquote(urlsplit(base).path) + key


HEAD_LIMIT = 64 * 1024
HEAD_THREADS = 16


def file_heads(uri: str, keys: list[str], access: S3Access) -> dict[str, bytes]:
    """The first 64 KiB of each file, read in parallel: tells CSV headers and Avro schemas apart."""
    from concurrent.futures import ThreadPoolExecutor

    if urlsplit(uri).scheme == "file":
        root = Path(unquote(urlsplit(uri).path))

        def read(key: str) -> bytes:
            with open(root / key, "rb") as handle:
                return handle.read(HEAD_LIMIT)

    else:
        parts = urlsplit(uri)
        bucket, prefix = parts.netloc, parts.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        client = s3_client(access)

        def read(key: str) -> bytes:
            response = client.get_object(  # type: ignore[attr-defined]
                Bucket=bucket, Key=prefix + key, Range=f"bytes=0-{HEAD_LIMIT - 1}"
            )
            body: bytes = response["Body"].read()
            return body

    with ThreadPoolExecutor(max_workers=HEAD_THREADS) as pool:
        return dict(zip(keys, pool.map(read, keys), strict=True))
