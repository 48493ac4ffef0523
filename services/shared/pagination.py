"""Opaque page tokens for keyset pagination, and page-size defaults (AIP-158 style)."""

from __future__ import annotations

import base64
import binascii
import json

from services.shared.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def page_size_or_default(page_size: int) -> int:
    if page_size < 0:
        raise InvalidArgument.of([FieldViolation("page_size", "must not be negative")])
    return min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_page_token(last_row_key: list[str]) -> str:
    """A token naming the sort key of the last row of a page; the next page starts after it."""
    return base64.urlsafe_b64encode(json.dumps(last_row_key).encode()).decode()


def decode_page_token(token: str, parts: int) -> list[str] | None:
    """The sort key a token names, or None for the first page; a token not made here is refused."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise _invalid() from e
    if not isinstance(value, list) or len(value) != parts or not all(isinstance(v, str) for v in value):
        raise _invalid()
    return value


def _invalid() -> InvalidArgument:
    return InvalidArgument.of([FieldViolation("page_token", "is not a token returned by this API")])
