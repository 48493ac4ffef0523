"""The audit log: one event per mutating call of the control API, recorded after the call ends.

Only authenticated calls are recorded (a call without a valid token names no one), refusals included: a
PERMISSION_DENIED on someone else's ingestion is exactly what an audit is read for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.shared.interceptors import CallRecord
from services.shared.logging import get_logger

# RPCs that change something. Reads are not audited (the access log has them).
MUTATING_METHODS = frozenset(
    {
        "CreateIngestion",
        "UpdateIngestion",
        "DeleteIngestion",
        "RunIngestion",
        "ClearProcessedFiles",
        "CancelRun",
        "ShareIngestion",
        "UnshareIngestion",
        "CreateToken",
        "RevokeToken",
    }
)
_log = get_logger("audit")


@dataclass(frozen=True)
class AuditEvent:
    principal: str
    token_id: str
    action: str
    ingestion_id: str
    run_id: str
    target_token_id: str
    result: str
    request_id: str


def _field(request: Any, name: str) -> str:
    """A string field of the request, if the message has it (CreateIngestion names its id inside)."""
    if name == "ingestion_id" and hasattr(request, "ingestion") and not getattr(request, name, ""):
        return str(getattr(request.ingestion, "ingestion_id", ""))
    value = getattr(request, name, "")
    return value if isinstance(value, str) else ""


def event_of(call: CallRecord) -> AuditEvent | None:
    """The audit event of a finished call, or None when it is not audited."""
    action = call.method.rsplit("/", 1)[-1]
    if action not in MUTATING_METHODS or call.caller is None:
        return None
    return AuditEvent(
        principal=call.caller.name,
        token_id=call.caller.token_id,
        action=action,
        ingestion_id=_field(call.request, "ingestion_id"),
        run_id=_field(call.request, "run_id"),
        target_token_id=_field(call.request, "token_id"),
        result=call.code.name,
        request_id=call.request_id,
    )


class AuditRecorder:
    """Writes the event of each audited call; a failed write is logged, never turned into the call's error."""

    def __init__(self, events: Any) -> None:
        self._events = events  # AuditRepository

    async def __call__(self, call: CallRecord) -> None:
        event = event_of(call)
        if event is None:
            return
        try:
            await self._events.insert(event)
        except Exception:
            _log.exception("audit event not recorded", action=event.action, principal=event.principal)
