"""Bearer tokens and principals: parsing, hashing and role checks. No I/O here."""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from services.shared.errors import PermissionDenied, Unauthenticated

TOKEN_PREFIX = "alk_"
_TOKEN_SHAPE = re.compile(r"^alk_[A-Za-z0-9_-]{32,64}$")
_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)


class Role(enum.StrEnum):
    """What a token may do. Each role may do everything the roles below it may."""

    VIEWER = "viewer"  # read
    RUNNER = "runner"  # read, preview, run and cancel runs
    EDITOR = "editor"  # create ingestions, change them, clear their processed files
    ADMIN = "admin"  # everything on every ingestion, tokens, the audit log, the internal services

    @property
    def rank(self) -> int:
        return {Role.VIEWER: 1, Role.RUNNER: 2, Role.EDITOR: 3, Role.ADMIN: 4}[self]

    def capped_at(self, other: Role) -> Role:
        """The lower of the two roles."""
        return self if self.rank <= other.rank else other


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name (owner of what it creates), its role and its id."""

    name: str
    role: Role
    token_id: str

    def require(self, role: Role, action: str) -> None:
        if self.role.rank < role.rank:
            raise PermissionDenied(f"{action} needs the {role.value} role; this token has {self.role.value}")


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    name: str
    role: Role
    created_by: str
    create_time: datetime
    revoke_time: datetime | None


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_token_id() -> str:
    return "tok-" + secrets.token_hex(4)


def hash_secret(secret: str) -> bytes:
    # Secrets are 256 random bits, so a fast hash is enough; no salt or KDF is needed.
    return hashlib.sha256(secret.encode()).digest()


def secret_from_authorization(header: str | None) -> str:
    """The token in an `Authorization: Bearer <token>` value, or Unauthenticated saying what is wrong."""
    if not header:
        raise Unauthenticated("missing bearer token: send 'Authorization: Bearer <token>'")
    match = _BEARER.match(header)
    if not match:
        raise Unauthenticated("malformed authorization header: expected 'Bearer <token>'")
    secret = match.group(1)
    if not _TOKEN_SHAPE.match(secret):
        raise Unauthenticated("malformed bearer token")
    return secret
