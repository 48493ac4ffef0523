"""Reading the audit log: admins only, newest first, one page at a time."""

from __future__ import annotations

from services.control.audit_repository import AuditRepository, StoredAuditEvent
from services.shared.auth import Principal, Role
from services.shared.errors import FieldViolation, InvalidArgument
from services.shared.pagination import decode_page_token, encode_page_token, page_size_or_default


class AuditService:
    def __init__(self, events: AuditRepository) -> None:
        self._events = events

    async def list_page(
        self, caller: Principal, page_size: int, page_token: str, *, principal: str, ingestion_id: str
    ) -> tuple[list[StoredAuditEvent], str]:
        caller.require(Role.ADMIN, "reading the audit log")
        size = page_size_or_default(page_size)
        before = decode_page_token(page_token, 1)
        if before and not (before[0].isascii() and before[0].isdigit()):
            raise InvalidArgument.of([FieldViolation("page_token", "is not a token returned by this API")])
        # One extra row tells whether another page follows.
        rows = await self._events.list_before(
            int(before[0]) if before else None, size + 1, principal=principal, ingestion_id=ingestion_id
        )
        page = rows[:size]
        return page, encode_page_token([str(page[-1].seq)]) if len(rows) > size else ""
