"""Answers a preview: lists the source exactly as a run would and streams the listing to the tracker,
which plans it with the run's own SQL. Reads no file and writes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import structlog
from google.protobuf import json_format

from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.executor.discover import SourceLimits, list_source
from services.executor.load import TableLoader, short_error
from services.executor.pipeline import Listing, RunConfig
from services.executor.tracker_client import ExecutorTrackerClient
from services.shared.logging import get_logger
from services.tracker.models import FileEntry

_log = get_logger("preview")


async def answer_preview(
    tracker: ExecutorTrackerClient,
    loader: TableLoader,
    claim: tpb.ClaimPreviewResponse,
    limits: SourceLimits | None = None,
) -> None:
    with structlog.contextvars.bound_contextvars(preview_id=claim.preview_id):
        try:
            ingestion: dict[str, Any] = json_format.MessageToDict(claim.ingestion)
            config = RunConfig.from_ingestion(ingestion)
            table_exists = await asyncio.to_thread(loader.table_exists, config.table)
            listing = Listing(
                list_source(config.source_uri, config.pattern, config.source_access(limits or SourceLimits()))
            )
        except Exception as error:  # a bad configuration or an unreachable catalog: the preview says why
            message = short_error(error)
            _log.warning("preview failed", error=message)
            await tracker.complete_preview(claim.preview_id, _nothing(), table_exists=False, error=lambda: message)
            return
        await tracker.complete_preview(
            claim.preview_id,
            listing.chunks(),
            table_exists=table_exists,
            error=lambda: short_error(listing.error) if listing.error else "",
        )
        _log.info("preview answered")


async def _nothing() -> AsyncIterator[list[FileEntry]]:
    empty: list[list[FileEntry]] = []
    for chunk in empty:
        yield chunk
