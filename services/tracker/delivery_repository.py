"""Webhook deliveries in the `tracker` schema: which are due, what each attempt gave, and their listing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.shared.secret_box import SecretBox, rotate_all

# A claimed delivery is hidden from other senders for this long; a sender that dies mid-attempt only
# delays it.
CLAIM_SECONDS = 120.0


@dataclass(frozen=True)
class Delivery:
    delivery_id: str
    ingestion_id: str
    run_id: str
    url: str
    status: str
    attempts: list[dict[str, Any]]
    next_attempt_time: datetime | None
    create_time: datetime
    # Only for sending, and encrypted as stored (DeliveryRepository.signing_secret decrypts it); never listed.
    secret: str = ""
    max_attempts: int = 0
    payload: str = ""


_COLUMNS = "delivery_id, ingestion_id, run_id, url, status, attempts, next_attempt_time, create_time"


def _delivery(row: asyncpg.Record, *, with_secret: bool = False) -> Delivery:
    extra = (
        {"secret": row["secret"], "max_attempts": row["max_attempts"], "payload": row["payload"]} if with_secret else {}
    )
    return Delivery(
        delivery_id=row["delivery_id"],
        ingestion_id=row["ingestion_id"],
        run_id=row["run_id"],
        url=row["url"],
        status=row["status"],
        attempts=json.loads(row["attempts"]),
        next_attempt_time=row["next_attempt_time"] if row["status"] == "PENDING" else None,
        create_time=row["create_time"],
        **extra,
    )


class DeliveryRepository:
    def __init__(self, pool: asyncpg.Pool, secret_box: SecretBox) -> None:
        self._pool = pool
        self._secret_box = secret_box

    def signing_secret(self, delivery: Delivery) -> str:
        """The delivery's secret in plaintext, for signing it (UndecryptableSecret when no key fits)."""
        return self._secret_box.decrypt(delivery.secret, what=f"the webhook secret of {delivery.delivery_id}")

    async def claim_due(self, limit: int) -> list[Delivery]:
        """Pending deliveries whose time has come, hidden from other senders while this one tries them."""
        rows = await self._pool.fetch(
            f"UPDATE tracker.webhook_deliveries SET next_attempt_time = now() + make_interval(secs => $2)"
            f" WHERE delivery_id IN (SELECT delivery_id FROM tracker.webhook_deliveries"
            f"   WHERE status = 'PENDING' AND next_attempt_time <= now()"
            f"   ORDER BY next_attempt_time LIMIT $1 FOR UPDATE SKIP LOCKED)"
            f" RETURNING {_COLUMNS}, secret, max_attempts, payload",
            limit,
            CLAIM_SECONDS,
        )
        return [_delivery(r, with_secret=True) for r in rows]

    async def record_attempt(
        self, delivery: Delivery, attempt: dict[str, Any], *, final_status: str | None, retry_in: float
    ) -> str:
        """Append the attempt; end the delivery with final_status (its secret, no longer needed, is dropped), or
        try again in retry_in seconds."""
        status: str = await self._pool.fetchval(
            "UPDATE tracker.webhook_deliveries SET attempts = attempts || $2::jsonb,"
            " status = COALESCE($3, status), next_attempt_time = now() + make_interval(secs => $4),"
            " secret = CASE WHEN $3::text IS NULL THEN secret ELSE '' END"
            " WHERE delivery_id = $1 RETURNING status",
            delivery.delivery_id,
            json.dumps([attempt]),
            final_status,
            retry_in,
        )
        return status

    async def list(self, ingestion_id: str, after: tuple[datetime, str] | None, limit: int) -> list[Delivery]:
        """Newest first; keyset on (create_time, delivery_id)."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM tracker.webhook_deliveries WHERE ingestion_id = $1"
            f" AND ($2::timestamptz IS NULL OR (create_time, delivery_id) < ($2, $3))"
            f" ORDER BY create_time DESC, delivery_id DESC LIMIT $4",
            ingestion_id,
            after[0] if after else None,
            after[1] if after else "",
            limit,
        )
        return [_delivery(r) for r in rows]

    async def rotate_secrets(self) -> int:
        """Re-encrypt under the first key the secrets of pending deliveries that are not (legacy plaintext
        included); ended ones keep none (older rows lose theirs here). Safe with replicas doing the same at
        once; a second call changes nothing."""
        await self._pool.execute(
            "UPDATE tracker.webhook_deliveries SET secret = '' WHERE status <> 'PENDING' AND secret <> ''"
        )
        rows = await self._pool.fetch(
            "SELECT delivery_id, secret FROM tracker.webhook_deliveries WHERE status = 'PENDING' AND secret <> ''"
        )

        async def write(delivery_id: str, new: str, old: str) -> bool:
            result: str = await self._pool.execute(
                "UPDATE tracker.webhook_deliveries SET secret = $2 WHERE delivery_id = $1 AND secret = $3",
                delivery_id,
                new,
                old,
            )
            return result.endswith(" 1")

        return await rotate_all(self._secret_box, [(r["delivery_id"], r["secret"]) for r in rows], write)
