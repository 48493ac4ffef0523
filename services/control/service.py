"""Control use cases: ingestion configurations and API tokens, with their permission rules."""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from autoloader.tracker.v1 import tracker_pb2 as tpb
from services.control.access import Action, authorize, not_found
from services.control.models import (
    MASKED_SECRET,
    OUTPUT_ONLY_FIELDS,
    Column,
    Ingestion,
    apply_paths,
    updatable_paths,
)
from services.control.repository import IngestionRepository
from services.control.schedule_repository import ScheduleRepository, TickRecord
from services.control.scheduler import with_next_fire_time
from services.control.schema_ddl import columns_from_spark_json
from services.control.share_repository import Share, ShareRepository
from services.control.tracker_client import TrackerClient
from services.control.validation import explicit_columns, validate, validate_ingestion_id
from services.shared.auth import Principal, Role, TokenRecord, new_secret, new_token_id
from services.shared.clock import Clock
from services.shared.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.shared.local_sources import LocalSourcePolicy
from services.shared.outbound_http import AddressPolicy, check_url
from services.shared.pagination import MAX_PAGE_SIZE, decode_page_token, encode_page_token, page_size_or_default
from services.shared.token_repository import TokenRepository

DEFAULT_PREVIEW_FILES = 20
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
_TOKEN_NAME_RULE = "1-64 letters, digits, '.', '_', '@' or '-'"
ROLE_NAMES = ("ROLE_VIEWER", "ROLE_RUNNER", "ROLE_EDITOR", "ROLE_ADMIN")
# Admin is a token's role, never a share's: a share cannot make anyone an admin.
SHAREABLE_ROLES = (Role.VIEWER, Role.RUNNER, Role.EDITOR)


class IngestionService:
    def __init__(
        self,
        ingestions: IngestionRepository,
        tracker: TrackerClient,
        *,
        schedules: ScheduleRepository,
        clock: Clock,
        outbound: AddressPolicy,
        shares: ShareRepository,
        endpoints: AddressPolicy | None = None,
        local_sources: LocalSourcePolicy | None = None,
        preview_timeout: float = 60.0,
    ) -> None:
        self._preview_timeout = preview_timeout
        self._ingestions = ingestions
        self._shares = shares
        self._tracker = tracker
        self._schedules = schedules
        self._clock = clock
        self._outbound = outbound
        # Where sources' custom S3 endpoints may lead; by default public addresses only.
        self._endpoints = endpoints if endpoints is not None else AddressPolicy()
        # Which directories file:// sources may read; by default any but the service's own state.
        self._local_sources = local_sources if local_sources is not None else LocalSourcePolicy()

    async def _checked(self, ingestion: Ingestion) -> Ingestion:
        """Validated, with its webhook and S3 endpoint addresses allowed and its next fire time set from now."""
        validate(ingestion)
        if ingestion.webhook is not None:
            refusal = await asyncio.to_thread(check_url, ingestion.webhook.url, self._outbound)
            if refusal:
                raise InvalidArgument.of([FieldViolation("webhook.url", f"is not allowed: {refusal}")])
        if ingestion.source.uri.startswith("file://"):
            directory = Path(unquote(urlsplit(ingestion.source.uri).path))
            # Symbolic links are followed by the executor, which reads the files; here the path is checked.
            refusal = self._local_sources.refusal(directory, resolve_links=False)
            if refusal:
                raise InvalidArgument.of([FieldViolation("source.uri", f"is not allowed: {refusal}")])
        if ingestion.source.endpoint_url:
            # Resolving the host may block: off the event loop, like the webhook check.
            refusal = await asyncio.to_thread(check_url, ingestion.source.endpoint_url, self._endpoints)
            if refusal:
                raise InvalidArgument.of([FieldViolation("source.endpoint_url", f"is not allowed: {refusal}")])
        return with_next_fire_time(ingestion, self._clock)

    async def create(self, caller: Principal, ingestion: Ingestion) -> Ingestion:
        caller.require(Role.EDITOR, "creating an ingestion")
        generated = not ingestion.ingestion_id
        for _ in range(5):
            candidate = replace(
                ingestion,
                ingestion_id=ingestion.ingestion_id or f"ingestion-{secrets.token_hex(3)}",
                owner=caller.name,
            )
            try:
                return await self._ingestions.insert(await self._checked(candidate))
            except AlreadyExists:
                if not generated:
                    raise
        raise Aborted("could not generate a free ingestion_id; try again")

    async def _authorized(self, caller: Principal, ingestion_id: str, action: Action) -> Ingestion:
        """The ingestion, if the caller may do this to it (else NotFound / PermissionDenied, see access.py)."""
        if validate_ingestion_id(ingestion_id):
            raise not_found(ingestion_id)
        ingestion = await self._ingestions.get(ingestion_id)
        if ingestion is None:
            raise not_found(ingestion_id)
        shared_role = None
        if caller.role is not Role.ADMIN and caller.name != ingestion.owner:
            shared_role = await self._shares.role_of(ingestion_id, caller.name)
        authorize(caller, ingestion_id, ingestion.owner, shared_role, action)
        return ingestion

    async def get(self, caller: Principal, ingestion_id: str) -> Ingestion:
        return await self._authorized(caller, ingestion_id, Action.READ)

    async def list_page(self, caller: Principal, page_size: int, page_token: str) -> tuple[list[Ingestion], str]:
        size = page_size_or_default(page_size)
        after = decode_page_token(page_token, 1)
        # Admins see every ingestion; anyone else the ones they own or that are shared with them.
        visible_to = None if caller.role is Role.ADMIN else caller.name
        # One extra row tells whether another page follows.
        rows = await self._ingestions.list_after(after[0] if after else "", size + 1, visible_to=visible_to)
        page = rows[:size]
        next_token = encode_page_token([page[-1].ingestion_id]) if len(rows) > size else ""
        return page, next_token

    async def update(self, caller: Principal, ingestion_id: str, changes: Ingestion, paths: list[str]) -> Ingestion:
        current = await self._authorized(caller, ingestion_id, Action.UPDATE)
        _check_update_paths(paths)
        updated = _keep_stored_secret(current, apply_paths(current, changes, paths))
        checked = await self._checked(updated)
        if (updated.schedule, updated.enabled) == (current.schedule, current.enabled):
            checked = replace(checked, next_fire_time=current.next_fire_time)  # the schedule did not change
        saved = await self._ingestions.update(checked, expected_update_time=current.update_time)
        if saved is None:
            raise Aborted(f"ingestion '{ingestion_id}' was changed or deleted concurrently; read it and retry")
        return saved

    async def delete(self, caller: Principal, ingestion_id: str) -> None:
        await self._authorized(caller, ingestion_id, Action.DELETE)
        if not await self._ingestions.delete(ingestion_id):
            raise not_found(ingestion_id)

    async def run(self, caller: Principal, ingestion_id: str) -> tpb.Run:
        ingestion = await self._authorized(caller, ingestion_id, Action.RUN)
        if not ingestion.enabled:
            raise Aborted(f"ingestion '{ingestion_id}' is paused; set enabled to true before running it")
        return await self._tracker.create_run(ingestion, trigger="manual")

    async def list_runs(
        self, caller: Principal, ingestion_id: str, page_size: int, page_token: str
    ) -> tpb.ListRunsResponse:
        await self.get(caller, ingestion_id)
        return await self._tracker.list_runs(ingestion_id, page_size, page_token)

    async def list_files(self, caller: Principal, request: tpb.ListFilesRequest) -> tpb.ListFilesResponse:
        """The ingestion's processed-file records, filtered and one page at a time."""
        await self.get(caller, request.ingestion_id)
        return await self._tracker.list_files(request)

    async def schema(self, caller: Principal, ingestion_id: str) -> tuple[str, list[Column]]:
        """(origin, columns): as the last writing run recorded them, else as configured, else unknown."""
        ingestion = await self.get(caller, ingestion_id)
        recorded = await self._tracker.table_schema(ingestion_id)
        if recorded:
            return "table", columns_from_spark_json(recorded)
        configured = explicit_columns(ingestion.schema)
        return ("configured", configured) if configured else ("", [])

    async def preview(
        self, caller: Principal, ingestion_id: str, page_size: int
    ) -> tuple[Ingestion, tpb.PreviewResult]:
        """What the next run would load, planned from a fresh listing by an executor and the tracker."""
        ingestion = await self._authorized(caller, ingestion_id, Action.PREVIEW)
        size = DEFAULT_PREVIEW_FILES if page_size == 0 else page_size
        if not 0 < size <= MAX_PAGE_SIZE:
            raise InvalidArgument.of([FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")])
        return ingestion, await self._previewed(ingestion, size)

    async def _previewed(
        self, ingestion: Ingestion, page_size: int, clear: tpb.ClearFilesRequest | None = None
    ) -> tpb.PreviewResult:
        """Queue a preview and wait for an executor's listing and the tracker's plan of it."""
        preview_id = await self._tracker.create_preview(ingestion, page_size, clear)
        deadline = asyncio.get_running_loop().time() + self._preview_timeout
        delay = 0.05
        while True:
            answer = await self._tracker.get_preview(preview_id)
            if answer.status == "DONE":
                return answer.result
            if answer.status == "FAILED":
                raise FailedPrecondition(
                    f"the source of '{ingestion.ingestion_id}' could not be listed: {answer.error}"
                )
            if asyncio.get_running_loop().time() > deadline:
                raise DeadlineExceeded(
                    f"no executor answered the preview within {self._preview_timeout:g}s; is an executor running?"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def list_deliveries(
        self, caller: Principal, ingestion_id: str, page_size: int, page_token: str
    ) -> tpb.ListDeliveriesResponse:
        await self.get(caller, ingestion_id)
        return await self._tracker.list_deliveries(ingestion_id, page_size, page_token)

    async def get_run(self, caller: Principal, run_id: str) -> tpb.Run:
        return await self._authorized_run(caller, run_id, Action.READ)

    async def cancel_run(self, caller: Principal, run_id: str) -> tpb.Run:
        await self._authorized_run(caller, run_id, Action.CANCEL_RUN)
        return await self._tracker.cancel_run(run_id)

    async def _authorized_run(self, caller: Principal, run_id: str, action: Action) -> tpb.Run:
        """The run, if the caller may do this to its ingestion; a run the caller cannot see is not found.
        A run of a deleted ingestion has no owner left: only admins see it."""
        try:
            run = await self._tracker.get_run(run_id)
        except NotFound:
            raise NotFound(f"run '{run_id}' not found") from None
        try:
            await self._authorized(caller, run.ingestion_id, action)
        except NotFound:
            if caller.role is not Role.ADMIN:
                raise NotFound(f"run '{run_id}' not found") from None
        return run

    async def list_ticks(
        self, caller: Principal, ingestion_id: str, page_size: int, page_token: str
    ) -> tuple[list[TickRecord], str]:
        await self.get(caller, ingestion_id)
        size = page_size_or_default(page_size)
        after = decode_page_token(page_token, 1)
        rows = await self._schedules.list_ticks(
            ingestion_id, (datetime.fromisoformat(after[0]),) if after else None, size + 1
        )
        page = rows[:size]
        next_token = encode_page_token([page[-1].tick_time.isoformat()]) if len(rows) > size else ""
        return page, next_token

    async def clear_files(
        self, caller: Principal, request: tpb.ClearFilesRequest
    ) -> tuple[tpb.ClearFilesResponse, tpb.PreviewResult | None]:
        """Clear the selected processed-file records (all by default). A dry run only counts them, and with an
        executor's listing also the files among them still in the source (None when no executor answered)."""
        ingestion = await self._authorized(caller, request.ingestion_id, Action.CLEAR_FILES)
        cleared = await self._tracker.clear_files(request)
        if not request.dry_run:
            return cleared, None
        try:
            return cleared, await self._previewed(ingestion, 0, request)
        except (DeadlineExceeded, FailedPrecondition):
            return cleared, None

    async def share(self, caller: Principal, ingestion_id: str, principal_name: str, role: Role | None) -> Share:
        await self._authorized(caller, ingestion_id, Action.SHARE)
        violations = []
        if not _TOKEN_NAME.fullmatch(principal_name):
            violations.append(FieldViolation("principal", f"must be a token name: {_TOKEN_NAME_RULE}"))
        if role not in SHAREABLE_ROLES:
            violations.append(FieldViolation("role", "must be ROLE_VIEWER, ROLE_RUNNER or ROLE_EDITOR"))
        if violations:
            raise InvalidArgument.of(violations)
        assert role is not None
        share = await self._shares.put(ingestion_id, principal_name, role, caller.name)
        if share is None:
            raise not_found(ingestion_id)
        return share

    async def list_shares(self, caller: Principal, ingestion_id: str) -> list[Share]:
        await self._authorized(caller, ingestion_id, Action.READ)
        return await self._shares.list(ingestion_id)

    async def unshare(self, caller: Principal, ingestion_id: str, principal_name: str) -> bool:
        await self._authorized(caller, ingestion_id, Action.SHARE)
        return await self._shares.delete(ingestion_id, principal_name)


def _keep_stored_secret(current: Ingestion, updated: Ingestion) -> Ingestion:
    """Writing back the masked secret a read showed keeps the stored secret."""
    if updated.webhook is None or updated.webhook.secret != MASKED_SECRET or current.webhook is None:
        return updated
    return replace(updated, webhook=replace(updated.webhook, secret=current.webhook.secret))


def _check_update_paths(paths: list[str]) -> None:
    if not paths:
        raise InvalidArgument.of([FieldViolation("update_mask", "names no field to change")])
    allowed = updatable_paths()
    violations = []
    for path in paths:
        if path.split(".")[0] in OUTPUT_ONLY_FIELDS:
            violations.append(FieldViolation(path, "is set by the service and cannot be changed"))
        elif path not in allowed:
            violations.append(FieldViolation(path, "is not a field of an ingestion"))
    if violations:
        raise InvalidArgument.of(violations)


class TokenService:
    def __init__(self, tokens: TokenRepository) -> None:
        self._tokens = tokens

    async def create(self, caller: Principal, name: str, role: Role | None) -> tuple[TokenRecord, str]:
        caller.require(Role.ADMIN, "creating a token")
        violations = []
        if not _TOKEN_NAME.fullmatch(name):
            violations.append(FieldViolation("name", f"must be {_TOKEN_NAME_RULE}"))
        if role is None:
            violations.append(FieldViolation("role", f"is required: {', '.join(ROLE_NAMES)}"))
        if violations:
            raise InvalidArgument.of(violations)
        assert role is not None
        secret = new_secret()
        record = await self._tokens.create(
            token_id=new_token_id(), name=name, role=role, secret=secret, created_by=caller.name
        )
        return record, secret

    async def list(self, caller: Principal, show_revoked: bool) -> list[TokenRecord]:
        caller.require(Role.ADMIN, "listing tokens")
        return await self._tokens.list(show_revoked=show_revoked)

    async def revoke(self, caller: Principal, token_id: str) -> TokenRecord:
        caller.require(Role.ADMIN, "revoking a token")
        record = await self._tokens.revoke(token_id)
        if record is None:
            raise NotFound(f"token '{token_id}' not found")
        return record
