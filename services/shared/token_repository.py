"""Tokens in the `auth` schema, shared by every service so each can authenticate callers itself."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from services.shared.auth import Principal, Role, TokenRecord, hash_secret, secret_from_authorization
from services.shared.errors import Unauthenticated

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "auth"

_COLUMNS = "token_id, name, role, created_by, create_time, revoke_time"


def _record(row: asyncpg.Record) -> TokenRecord:
    return TokenRecord(
        token_id=row["token_id"],
        name=row["name"],
        role=Role(row["role"]),
        created_by=row["created_by"],
        create_time=row["create_time"],
        revoke_time=row["revoke_time"],
    )


class TokenRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, *, token_id: str, name: str, role: Role, secret: str, created_by: str) -> TokenRecord:
        row = await self._pool.fetchrow(
            f"INSERT INTO auth.tokens (token_id, name, role, secret_hash, created_by)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            token_id,
            name,
            role.value,
            hash_secret(secret),
            created_by,
        )
        return _record(row)

    async def find_active(self, secret: str) -> TokenRecord | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM auth.tokens WHERE secret_hash = $1 AND revoke_time IS NULL",
            hash_secret(secret),
        )
        return _record(row) if row else None

    async def list(self, *, show_revoked: bool) -> list[TokenRecord]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM auth.tokens WHERE $1 OR revoke_time IS NULL ORDER BY create_time, token_id",
            show_revoked,
        )
        return [_record(r) for r in rows]

    async def revoke(self, token_id: str) -> TokenRecord | None:
        """Revoke once; a second revoke returns the record unchanged."""
        row = await self._pool.fetchrow(
            f"UPDATE auth.tokens SET revoke_time = COALESCE(revoke_time, now()) WHERE token_id = $1"
            f" RETURNING {_COLUMNS}",
            token_id,
        )
        return _record(row) if row else None


class Authenticator:
    """Turns an Authorization header into a Principal, or raises Unauthenticated."""

    def __init__(self, tokens: TokenRepository) -> None:
        self._tokens = tokens

    async def authenticate(self, authorization: str | None) -> Principal:
        secret = secret_from_authorization(authorization)
        record = await self._tokens.find_active(secret)
        if record is None:
            raise Unauthenticated("invalid or revoked token")
        return Principal(name=record.name, role=record.role, token_id=record.token_id)
