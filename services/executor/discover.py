"""List the files of a source: a local directory or an S3 prefix. The only module that imports boto3.

Keys are relative to the source URI. The glob pattern, when set, is matched against that relative key
(`*` stays within one path segment, `**` crosses segments).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from services.executor.source_endpoint import check_source_endpoint
from services.shared.errors import FailedPrecondition
from services.shared.local_sources import LocalSourcePolicy
from services.shared.outbound_http import PUBLIC_ONLY, AddressPolicy
from services.tracker.models import FileEntry


@dataclass(frozen=True)
class SourceLimits:
    """Where sources may lead: the addresses custom S3 endpoints may resolve to, the local directories
    file:// sources may read."""

    endpoints: AddressPolicy = PUBLIC_ONLY
    local_sources: LocalSourcePolicy = field(default_factory=LocalSourcePolicy)


@dataclass(frozen=True)
class SourceAccess:
    """How to reach a source: an S3 endpoint, region and resolved credentials (None: default AWS chain), and
    the limits checked each time a client is made or a local directory is read."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    limits: SourceLimits = field(default_factory=SourceLimits)


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


def _entirely_before(directory_key: str, start_after: str) -> bool:
    """Whether every key under the directory (keys `directory_key/...`) sorts at or before start_after."""
    prefix = directory_key + "/"
    return prefix < start_after and not start_after.startswith(prefix)


def _all_files(root: Path) -> Iterator[tuple[str, Path]]:
    for directory, _, names in os.walk(root):
        base = Path(directory).relative_to(root).as_posix()
        base = "" if base == "." else base + "/"
        for name in names:
            yield base + name, Path(directory) / name


def _files_after(root: Path, base: str, start_after: str) -> Iterator[tuple[str, Path]]:
    """The files below root/base whose keys sort after start_after, walked as os.walk would (symlinked
    directories are not entered) but reading each directory once and looking only at names that can matter:
    for a directory of 100,000 files that are all before start_after, one read and a comparison per name."""
    directory = root / base
    if start_after.startswith(base):
        rest = start_after[len(base) :]
        # A superset of the names to keep: files after rest, and directories after it or on its path.
        names = [name for name in os.listdir(directory) if name > rest or rest.startswith(name)]
    else:
        names = os.listdir(directory)  # a directory not skipped and off start_after's path sorts wholly after it
    for name in names:
        key, path = base + name, directory / name
        if path.is_dir():
            if not path.is_symlink() and not _entirely_before(key, start_after):
                yield from _files_after(root, key + "/", start_after)
        elif key > start_after:
            yield key, path


class LocalSourceRefused(FailedPrecondition):
    """A file:// source, or a file in it, lies where local sources may not read."""


def check_local_source(path: Path, policy: LocalSourcePolicy) -> None:
    """Raise LocalSourceRefused unless files below `path` may be read (symbolic links followed)."""
    refusal = policy.refusal(path, resolve_links=True)
    if refusal:
        raise LocalSourceRefused(f"source.uri is not allowed: {refusal}")


def list_local(
    uri: str, pattern: str, start_after: str | None = None, policy: LocalSourcePolicy | None = None
) -> Iterator[FileEntry]:
    """The files below the directory; with start_after only the keys that sort after it (as S3's StartAfter;
    Python compares code points, which orders like S3's UTF-8 bytes). A symbolic link that leads where the
    policy forbids is refused, not followed."""
    root = Path(unquote(urlsplit(uri).path))
    policy = policy or LocalSourcePolicy()
    check_local_source(root, policy)
    if not root.is_dir():
        raise FailedPrecondition(f"source.uri: directory {root} does not exist")
    regex = glob_to_regex(pattern) if pattern else None
    files = _all_files(root) if start_after is None else _files_after(root, "", start_after)
    for key, path in files:
        if _is_hidden(key) or not _matches(regex, key):
            continue
        if path.is_symlink():
            check_local_source(path, policy)
        stat = path.stat()
        # No content hash for local files: size + mtime identify a version, as S3's ETag does there.
        yield FileEntry(
            key=key,
            etag=f"{stat.st_size:x}-{stat.st_mtime_ns:x}",
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, UTC),
        )


def s3_client(access: SourceAccess) -> object:
    """A boto3 client for the source, made only once its endpoint passed the address check."""
    import boto3  # imported here: local-only setups never load it
    from botocore.config import Config

    check_source_endpoint(access.endpoint_url, access.limits.endpoints)
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


def list_s3(uri: str, pattern: str, access: SourceAccess, start_after: str | None = None) -> Iterator[FileEntry]:
    from botocore.exceptions import BotoCoreError, ClientError

    parts = urlsplit(uri)
    bucket, prefix = parts.netloc, parts.path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    regex = glob_to_regex(pattern) if pattern else None
    client = s3_client(access)
    try:
        # StartAfter: S3 lists only the keys after it, in UTF-8 byte order.
        extra = {"StartAfter": prefix + start_after} if start_after is not None else {}
        paginator = client.get_paginator("list_objects_v2")  # type: ignore[attr-defined]
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix, **extra)
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


def list_source(uri: str, pattern: str, access: SourceAccess, *, start_after: str | None = None) -> Iterator[FileEntry]:
    """The source's files; with start_after only the keys (relative to uri) that sort after it."""
    scheme = urlsplit(uri).scheme
    if scheme == "file":
        return list_local(uri, pattern, start_after, access.limits.local_sources)
    if scheme == "s3":
        return list_s3(uri, pattern, access, start_after)
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


def file_heads(uri: str, keys: list[str], access: SourceAccess) -> dict[str, bytes]:
    """The first 64 KiB of each file, read in parallel: tells CSV headers and Avro schemas apart."""
    from concurrent.futures import ThreadPoolExecutor

    if urlsplit(uri).scheme == "file":
        root = Path(unquote(urlsplit(uri).path))

        def read(key: str) -> bytes:
            check_local_source(root / key, access.limits.local_sources)  # it may have become a link since
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
