"""Resolve an ingestion's credentials_ref into S3 keys, inside the executor only (never stored or logged)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from services.executor.discover import profile_credentials
from services.shared.errors import FailedPrecondition


def resolve(credentials_ref: str) -> tuple[str | None, str | None]:
    """(access_key, secret_key), or (None, None) for the default AWS credential chain.

    env:NAME      NAME_ACCESS_KEY_ID and NAME_SECRET_ACCESS_KEY from the executor's environment
    file:/path    a JSON file {"access_key_id": ..., "secret_access_key": ...}
    profile:NAME  a profile of the executor's AWS config files
    """
    if not credentials_ref:
        return None, None
    kind, _, name = credentials_ref.partition(":")
    if kind == "env":
        access, secret = os.environ.get(f"{name}_ACCESS_KEY_ID"), os.environ.get(f"{name}_SECRET_ACCESS_KEY")
        if not access or not secret:
            raise FailedPrecondition(
                f"source.credentials_ref: {name}_ACCESS_KEY_ID and {name}_SECRET_ACCESS_KEY are not set on the executor"
            )
        return access, secret
    if kind == "file":
        try:
            data = json.loads(Path(name).read_text())
            return str(data["access_key_id"]), str(data["secret_access_key"])
        except (OSError, ValueError, KeyError) as e:
            raise FailedPrecondition(
                "source.credentials_ref: the executor cannot read access_key_id and secret_access_key from the file"
            ) from e
    if kind == "profile":
        return profile_credentials(name)
    raise FailedPrecondition("source.credentials_ref: must be env:NAME, file:/path or profile:NAME")
