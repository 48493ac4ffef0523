"""Sends queued webhook deliveries: each due one is tried, its attempt recorded, and it is retried with
exponential backoff until a 2xx answer or its last attempt. Replicas share the queue through row locks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from services.shared import outbound_http
from services.shared.logging import get_logger
from services.shared.secret_box import UndecryptableSecret
from services.shared.webhook_signature import backoff_seconds
from services.tracker import webhooks
from services.tracker.delivery_repository import Delivery, DeliveryRepository
from services.tracker.metrics import TrackerMetrics

_log = get_logger("webhooks")
BATCH = 20


class WebhookSender:
    def __init__(
        self,
        deliveries: DeliveryRepository,
        policy: outbound_http.AddressPolicy,
        *,
        backoff_base: float,
        timeout: float,
        counters: TrackerMetrics,
    ) -> None:
        self._counters = counters
        self._deliveries = deliveries
        self._policy = policy
        self._backoff_base = backoff_base
        self._timeout = timeout

    async def send_due(self) -> bool:
        """Try every due delivery once (a batch at a time); True when a full batch was due (more may be)."""
        due = await self._deliveries.claim_due(BATCH)
        await asyncio.gather(*(self._send(d) for d in due))
        return len(due) == BATCH

    async def _send(self, delivery: Delivery) -> None:
        started = datetime.now(UTC)
        try:
            secret = self._deliveries.signing_secret(delivery)
        except UndecryptableSecret as error:
            # Nothing is sent unsigned; the attempt counts, so fixing the keys in time lets a retry go out.
            _log.error("webhook secret cannot be decrypted", delivery_id=delivery.delivery_id, error=str(error))
            result = webhooks.Attempt(0, "the webhook secret cannot be decrypted with the configured keys", 0)
        else:
            result = await asyncio.to_thread(
                webhooks.attempt,
                delivery.url,
                secret,
                delivery.delivery_id,
                delivery.payload.encode(),
                self._policy,
                self._timeout,
            )
        number = len(delivery.attempts) + 1
        if result.delivered:
            final: str | None = "DELIVERED"
        elif result.refused or number >= delivery.max_attempts:
            final = "FAILED"
        else:
            final = None
        record = {
            "attempt_time": started.isoformat(),
            "status_code": result.status_code,
            "error": result.error,
            "duration_ms": result.duration_ms,
        }
        self._counters.webhook_attempts.labels(outcome=(final or "retry").lower()).inc()
        status = await self._deliveries.record_attempt(
            delivery, record, final_status=final, retry_in=backoff_seconds(number, base=self._backoff_base)
        )
        _log.info(
            "webhook attempt",
            delivery_id=delivery.delivery_id,
            run_id=delivery.run_id,
            attempt=number,
            status_code=result.status_code,
            error=result.error,
            delivery_status=status,
        )
