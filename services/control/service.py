"""Control use cases: ingestion configurations and API tokens, with their permission rules."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import replace

from services.control.models import OUTPUT_ONLY_FIELDS, Ingestion, apply_paths, updatable_paths
from services.control.repository import IngestionRepository
from services.control.validation import INGESTION_ID, validate, validate_ingestion_id
from services.shared.auth import Principal, Role, TokenRecord, new_secret, new_token_id
from services.shared.errors import Aborted, AlreadyExists, FieldViolation, InvalidArgument, NotFound
from services.shared.token_repository import TokenRepository

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def encode_page_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode()


def decode_page_token(token: str) -> str:
    if not token:
        return ""
    try:
        last_id = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise InvalidArgument.of([FieldViolation("page_token", "is not a token returned by this API")]) from e
    if not INGESTION_ID.match(last_id):
        raise InvalidArgument.of([FieldViolation("page_token", "is not a token returned by this API")])
    return last_id


def page_size_or_default(page_size: int) -> int:
    if page_size < 0:
        raise InvalidArgument.of([FieldViolation("page_size", "must not be negative")])
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class IngestionService:
    def __init__(self, ingestions: IngestionRepository) -> None:
        self._ingestions = ingestions

    async def create(self, caller: Principal, ingestion: Ingestion) -> Ingestion:
        caller.require(Role.EDITOR, "creating an ingestion")
        generated = not ingestion.ingestion_id
        for _ in range(5):
            candidate = replace(
                ingestion,
                ingestion_id=ingestion.ingestion_id or f"ingestion-{secrets.token_hex(3)}",
                owner=caller.name,
            )
            validate(candidate)
            try:
                return await self._ingestions.insert(candidate)
            except AlreadyExists:
                if not generated:
                    raise
        raise Aborted("could not generate a free ingestion_id; try again")

    async def get(self, caller: Principal, ingestion_id: str) -> Ingestion:
        if validate_ingestion_id(ingestion_id):
            raise NotFound(f"ingestion '{ingestion_id}' not found")
        ingestion = await self._ingestions.get(ingestion_id)
        if ingestion is None:
            raise NotFound(f"ingestion '{ingestion_id}' not found")
        return ingestion

    async def list_page(self, caller: Principal, page_size: int, page_token: str) -> tuple[list[Ingestion], str]:
        size = page_size_or_default(page_size)
        after = decode_page_token(page_token)
        # One extra row tells whether another page follows.
        rows = await self._ingestions.list_after(after, size + 1)
        page = rows[:size]
        next_token = encode_page_token(page[-1].ingestion_id) if len(rows) > size else ""
        return page, next_token

    async def update(self, caller: Principal, ingestion_id: str, changes: Ingestion, paths: list[str]) -> Ingestion:
        current = await self.get(caller, ingestion_id)
        caller.require_owner_or_admin(current.owner, f"changing ingestion '{ingestion_id}'")
        _check_update_paths(paths)
        updated = apply_paths(current, changes, paths)
        validate(updated)
        saved = await self._ingestions.update(updated, expected_update_time=current.update_time)
        if saved is None:
            raise Aborted(f"ingestion '{ingestion_id}' was changed or deleted concurrently; read it and retry")
        return saved

    async def delete(self, caller: Principal, ingestion_id: str) -> None:
        current = await self.get(caller, ingestion_id)
        caller.require_owner_or_admin(current.owner, f"deleting ingestion '{ingestion_id}'")
        if not await self._ingestions.delete(ingestion_id):
            raise NotFound(f"ingestion '{ingestion_id}' not found")


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
        if not _TOKEN_NAME.match(name):
            violations.append(FieldViolation("name", "must be 1-64 letters, digits, '.', '_', '@' or '-'"))
        if role is None:
            violations.append(FieldViolation("role", "is required: ROLE_VIEWER, ROLE_EDITOR or ROLE_ADMIN"))
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
