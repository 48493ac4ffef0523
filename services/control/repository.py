"""Ingestions and the request log in the `control` schema."""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg

from services.control.models import (
    Destination,
    Ingestion,
    MetadataColumns,
    Schedule,
    SchemaPolicy,
    Source,
    Webhook,
)
from services.shared.errors import Aborted, AlreadyExists, InvalidArgument
from services.shared.secret_box import SecretBox, rotate_all

MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMA = "control"
# How long a retry waits for the first call with the same request_id to finish.
PENDING_WAIT_SECONDS = 30.0

COLUMNS = (
    "ingestion_id, name, source, destination, max_retries, max_files_per_run, max_bytes_per_run,"
    " schedule, enabled, schema, metadata_columns, webhook, owner, create_time, update_time, next_fire_time"
)


def ingestion_from_row(row: asyncpg.Record, secret_box: SecretBox | None) -> Ingestion:
    """The stored ingestion; with secret_box, its webhook secret decrypted (without, it stays as stored: only for
    callers that never send the secret anywhere)."""
    schedule = json.loads(row["schedule"]) if row["schedule"] else None
    webhook = json.loads(row["webhook"]) if row["webhook"] else None
    if webhook and secret_box is not None and webhook.get("secret"):
        what = f"the webhook secret of ingestion '{row['ingestion_id']}'"
        webhook["secret"] = secret_box.decrypt(webhook["secret"], what=what)
    return Ingestion(
        ingestion_id=row["ingestion_id"],
        name=row["name"],
        source=Source.from_dict(json.loads(row["source"])),
        destination=Destination.from_dict(json.loads(row["destination"])),
        max_retries=row["max_retries"],
        max_files_per_run=row["max_files_per_run"],
        max_bytes_per_run=row["max_bytes_per_run"],
        schedule=Schedule(**schedule) if schedule else None,
        enabled=row["enabled"],
        # Rows written before these settings existed hold NULL: the defaults apply.
        schema=SchemaPolicy.from_dict(json.loads(row["schema"] or "{}")),
        metadata_columns=MetadataColumns(**json.loads(row["metadata_columns"] or "{}")),
        webhook=Webhook(**webhook) if webhook else None,
        owner=row["owner"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        next_fire_time=row["next_fire_time"],
    )


def _webhook_json(webhook: Webhook, secret_box: SecretBox) -> str:
    stored = asdict(webhook)
    if webhook.secret:
        stored["secret"] = secret_box.encrypt(webhook.secret)
    return json.dumps(stored)


def _values(ingestion: Ingestion, secret_box: SecretBox) -> list[Any]:
    return [
        ingestion.name,
        json.dumps(asdict(ingestion.source)),
        json.dumps(asdict(ingestion.destination)),
        ingestion.max_retries,
        ingestion.max_files_per_run,
        ingestion.max_bytes_per_run,
        json.dumps(asdict(ingestion.schedule)) if ingestion.schedule else None,
        ingestion.enabled,
        json.dumps(asdict(ingestion.schema)),
        json.dumps(asdict(ingestion.metadata_columns)),
        _webhook_json(ingestion.webhook, secret_box) if ingestion.webhook else None,
        ingestion.next_fire_time,
    ]


class IngestionRepository:
    def __init__(self, pool: asyncpg.Pool, secret_box: SecretBox) -> None:
        self._pool = pool
        self._secret_box = secret_box

    async def insert(self, ingestion: Ingestion) -> Ingestion:
        try:
            row = await self._pool.fetchrow(
                f"INSERT INTO control.ingestions (ingestion_id, owner, name, source, destination, max_retries,"
                f" max_files_per_run, max_bytes_per_run, schedule, enabled, schema, metadata_columns, webhook,"
                f" next_fire_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                f" RETURNING {COLUMNS}",
                ingestion.ingestion_id,
                ingestion.owner,
                *_values(ingestion, self._secret_box),
            )
        except asyncpg.UniqueViolationError as e:
            raise AlreadyExists(f"ingestion '{ingestion.ingestion_id}' already exists") from e
        return ingestion_from_row(row, self._secret_box)

    async def get(self, ingestion_id: str) -> Ingestion | None:
        row = await self._pool.fetchrow(
            f"SELECT {COLUMNS} FROM control.ingestions WHERE ingestion_id = $1", ingestion_id
        )
        return ingestion_from_row(row, self._secret_box) if row else None

    async def list_after(self, after_id: str, limit: int, *, visible_to: str | None = None) -> list[Ingestion]:
        """Keyset pagination: ingestions whose id sorts after after_id; with visible_to, only the ones that
        principal owns or that are shared with it."""
        if visible_to is None:
            rows = await self._pool.fetch(
                f"SELECT {COLUMNS} FROM control.ingestions WHERE ingestion_id > $1 ORDER BY ingestion_id LIMIT $2",
                after_id,
                limit,
            )
        else:
            rows = await self._pool.fetch(
                f"SELECT {COLUMNS} FROM control.ingestions i WHERE ingestion_id > $1 AND (owner = $3 OR EXISTS"
                "  (SELECT 1 FROM control.ingestion_shares s WHERE s.ingestion_id = i.ingestion_id"
                "   AND s.principal = $3))"
                " ORDER BY ingestion_id LIMIT $2",
                after_id,
                limit,
                visible_to,
            )
        return [ingestion_from_row(r, self._secret_box) for r in rows]

    async def update(self, ingestion: Ingestion, *, expected_update_time: Any) -> Ingestion | None:
        """Write the new configuration unless someone changed it since it was read (then None)."""
        row = await self._pool.fetchrow(
            f"UPDATE control.ingestions SET name = $2, source = $3, destination = $4, max_retries = $5,"
            f" max_files_per_run = $6, max_bytes_per_run = $7, schedule = $8, enabled = $9, schema = $10,"
            f" metadata_columns = $11, webhook = $12, next_fire_time = $13, update_time = clock_timestamp()"
            f" WHERE ingestion_id = $1 AND update_time = $14 RETURNING {COLUMNS}",
            ingestion.ingestion_id,
            *_values(ingestion, self._secret_box),
            expected_update_time,
        )
        return ingestion_from_row(row, self._secret_box) if row else None

    async def delete(self, ingestion_id: str) -> bool:
        result: str = await self._pool.execute("DELETE FROM control.ingestions WHERE ingestion_id = $1", ingestion_id)
        return result.endswith(" 1")

    async def rotate_secrets(self) -> int:
        """Re-encrypt under the first key every webhook secret that is not (legacy plaintext included); return
        how many were. Safe with replicas doing the same at once; a second call changes nothing."""
        rows = await self._pool.fetch(
            "SELECT ingestion_id, webhook->>'secret' AS secret FROM control.ingestions WHERE webhook->>'secret' <> ''"
        )

        async def write(ingestion_id: str, new: str, old: str) -> bool:
            result: str = await self._pool.execute(
                "UPDATE control.ingestions SET webhook = jsonb_set(webhook, '{secret}', to_jsonb($2::text))"
                " WHERE ingestion_id = $1 AND webhook->>'secret' = $3",
                ingestion_id,
                new,
                old,
            )
            return result.endswith(" 1")

        return await rotate_all(self._secret_box, [(r["ingestion_id"], r["secret"]) for r in rows], write)


class RequestLog:
    """Responses of calls that carried a request_id. A key is reserved before its call runs, so retries
    that overlap the first call wait for its response instead of running the call again."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def reserve(self, principal: str, request_id: str, method: str) -> bytes | None:
        """None when this caller now owns the key and must run the call; else the first call's response."""
        reserved = await self._pool.fetchval(
            "INSERT INTO control.request_log (principal, request_id, method) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING true",
            principal,
            request_id,
            method,
        )
        if reserved:
            return None
        deadline = asyncio.get_running_loop().time() + PENDING_WAIT_SECONDS
        while True:
            row = await self._pool.fetchrow(
                "SELECT method, response FROM control.request_log WHERE principal = $1 AND request_id = $2",
                principal,
                request_id,
            )
            if row is None:  # the first call failed and gave the key back: run it now
                return await self.reserve(principal, request_id, method)
            if row["method"] != method:
                raise InvalidArgument(f"request_id: already used for {row['method']}")
            if row["response"] is not None:
                response: bytes = row["response"]
                return response
            if asyncio.get_running_loop().time() > deadline:
                raise Aborted("request_id: a call with this request_id is still running; retry later")
            await asyncio.sleep(0.05)

    async def complete(self, principal: str, request_id: str, response: bytes) -> None:
        await self._pool.execute(
            "UPDATE control.request_log SET response = $3 WHERE principal = $1 AND request_id = $2",
            principal,
            request_id,
            response,
        )

    async def release(self, principal: str, request_id: str) -> None:
        """Give a reserved key back after its call failed, so a retry runs the call again."""
        await self._pool.execute(
            "DELETE FROM control.request_log WHERE principal = $1 AND request_id = $2 AND response IS NULL",
            principal,
            request_id,
        )
