"""Audit events in `control.audit_events`, append-only, read newest first."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.control.audit import AuditEvent


@dataclass(frozen=True)
class StoredAuditEvent:
    seq: int
    event_id: str
    event_time: datetime
    event: AuditEvent


class AuditRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(self, event: AuditEvent) -> None:
        await self._pool.execute(
            "INSERT INTO control.audit_events (event_id, principal, token_id, action, ingestion_id, run_id,"
            " target_token_id, result, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            f"audit-{secrets.token_hex(8)}",
            event.principal,
            event.token_id,
            event.action,
            event.ingestion_id,
            event.run_id,
            event.target_token_id,
            event.result,
            event.request_id,
        )

    async def list_before(
        self, before_seq: int | None, limit: int, *, principal: str = "", ingestion_id: str = ""
    ) -> list[StoredAuditEvent]:
        """Newest first, older than before_seq; optionally of one principal and/or one ingestion."""
        rows = await self._pool.fetch(
            "SELECT * FROM control.audit_events WHERE ($1::bigint IS NULL OR event_seq < $1)"
            " AND ($2 = '' OR principal = $2) AND ($3 = '' OR ingestion_id = $3)"
            " ORDER BY event_seq DESC LIMIT $4",
            before_seq,
            principal,
            ingestion_id,
            limit,
        )
        return [
            StoredAuditEvent(
                seq=row["event_seq"],
                event_id=row["event_id"],
                event_time=row["event_time"],
                event=AuditEvent(
                    principal=row["principal"],
                    token_id=row["token_id"],
                    action=row["action"],
                    ingestion_id=row["ingestion_id"],
                    run_id=row["run_id"],
                    target_token_id=row["target_token_id"],
                    result=row["result"],
                    request_id=row["request_id"],
                ),
            )
            for row in rows
        ]
