"""Webhook notices of ended runs: what is queued when a run ends, and what one delivery attempt sends."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from google.protobuf import json_format

from services.shared import outbound_http
from services.shared.process_info import version
from services.shared.secret_box import SecretBox
from services.shared.webhook_signature import SIGNATURE_HEADER, sign
from services.tracker.convert import run_to_pb
from services.tracker.models import Run

EVENT = "run.completed"


def with_encrypted_secret(config: dict[str, Any], secret_box: SecretBox) -> dict[str, Any]:
    """A frozen ingestion configuration as it is stored: its webhook secret encrypted."""
    webhook = config.get("webhook")
    if not isinstance(webhook, dict) or not webhook.get("secret"):
        return config
    return {**config, "webhook": {**webhook, "secret": secret_box.encrypt(str(webhook["secret"]))}}


def without_secret(config: dict[str, Any]) -> dict[str, Any]:
    """A frozen configuration for work that sends no webhook (executors, previews): no secret at all."""
    webhook = config.get("webhook")
    if not isinstance(webhook, dict) or "secret" not in webhook:
        return config
    return {**config, "webhook": {k: v for k, v in webhook.items() if k != "secret"}}


def run_event(run: Run) -> dict[str, Any]:
    """The body: the run as GET /api/v1/runs/{run_id} shows it."""
    as_json = json_format.MessageToDict(
        run_to_pb(run),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )
    return {"event": EVENT, "run": as_json}


async def enqueue(conn: asyncpg.Connection, run: Run, secret_box: SecretBox) -> None:
    """Queue a notice of the ended run when its ingestion has a webhook; called in the transaction that
    ends the run, so the notice exists exactly when the run's end does. The secret moves (still encrypted)
    from the run's configuration to the delivery: the ended run needs it no more."""
    webhook = await conn.fetchval("SELECT ingestion->'webhook' FROM tracker.runs WHERE run_id = $1", run.run_id)
    await conn.execute(
        "UPDATE tracker.runs SET ingestion = ingestion #- '{webhook,secret}'"
        " WHERE run_id = $1 AND ingestion->'webhook' ? 'secret'",
        run.run_id,
    )
    config = json.loads(webhook) if webhook else None
    if not config or not config.get("url"):
        return
    secret = str(config.get("secret", ""))
    await conn.execute(
        "INSERT INTO tracker.webhook_deliveries"
        " (delivery_id, ingestion_id, run_id, url, secret, max_attempts, payload, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING')",
        f"delivery-{secrets.token_hex(8)}",
        run.ingestion_id,
        run.run_id,
        str(config["url"]),
        secret_box.stored_form(secret) if secret else "",
        int(float(config.get("max_attempts", 6))),
        json.dumps(run_event(run)),
    )


@dataclass(frozen=True)
class Attempt:
    status_code: int  # 0 when no answer came
    error: str
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def refused(self) -> bool:
        """The target is not allowed: trying again will not help."""
        return self.status_code == 0 and self.error.startswith("refused:")


def attempt(
    url: str, secret: str, delivery_id: str, body: bytes, policy: outbound_http.AddressPolicy, timeout: float
) -> Attempt:
    """One POST of a delivery (blocking: call it on a worker thread)."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"autoloader/{version()}",
        "Autoloader-Event": EVENT,
        "Autoloader-Delivery": delivery_id,
        SIGNATURE_HEADER: sign(secret, int(time.time()), body),
    }
    started = time.monotonic()
    try:
        response = outbound_http.post(url, body, headers, policy, timeout=timeout)
    except outbound_http.OutboundRefused as refusal:
        return Attempt(0, f"refused: {refusal.reason}", 0)
    except outbound_http.OutboundError as error:
        return Attempt(0, str(error), round((time.monotonic() - started) * 1000))
    elapsed = round((time.monotonic() - started) * 1000)
    problem = "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    return Attempt(response.status, problem, elapsed)
