"""Shares of ingestions with other principals, in `control.ingestion_shares`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.shared.auth import Role

_COLUMNS = "ingestion_id, principal, role, granted_by, grant_time"


@dataclass(frozen=True)
class Share:
    ingestion_id: str
    principal: str
    role: Role
    granted_by: str
    grant_time: datetime


def _share(row: asyncpg.Record) -> Share:
    return Share(
        ingestion_id=row["ingestion_id"],
        principal=row["principal"],
        role=Role(row["role"]),
        granted_by=row["granted_by"],
        grant_time=row["grant_time"],
    )


class ShareRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def role_of(self, ingestion_id: str, principal: str) -> Role | None:
        """The role the ingestion is shared with the principal at, or None."""
        role = await self._pool.fetchval(
            "SELECT role FROM control.ingestion_shares WHERE ingestion_id = $1 AND principal = $2",
            ingestion_id,
            principal,
        )
        return Role(role) if role else None

    async def put(self, ingestion_id: str, principal: str, role: Role, granted_by: str) -> Share | None:
        """Share (or change the role of a share); None when the ingestion no longer exists."""
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO control.ingestion_shares (ingestion_id, principal, role, granted_by)"
                f" VALUES ($1, $2, $3, $4) ON CONFLICT (ingestion_id, principal) DO UPDATE"
                f" SET role = EXCLUDED.role, granted_by = EXCLUDED.granted_by, grant_time = now()"
                f" RETURNING {_COLUMNS}",
                ingestion_id,
                principal,
                role.value,
                granted_by,
            )
        except asyncpg.ForeignKeyViolationError:
            return None  # deleted since the caller's access was checked
        return _share(row)

    async def list(self, ingestion_id: str) -> list[Share]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM control.ingestion_shares WHERE ingestion_id = $1 ORDER BY principal",
            ingestion_id,
        )
        return [_share(r) for r in rows]

    async def delete(self, ingestion_id: str, principal: str) -> bool:
        result: str = await self._pool.execute(
            "DELETE FROM control.ingestion_shares WHERE ingestion_id = $1 AND principal = $2",
            ingestion_id,
            principal,
        )
        return result.endswith(" 1")
