"""Facts about the running process that every service reports."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

import autoloader

STARTED_AT = datetime.now(UTC)


def version() -> str:
    return autoloader.__version__


def start_timestamp() -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(STARTED_AT)
    return ts
