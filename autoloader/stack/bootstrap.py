"""First-start work of `autoloader up`: migrate every schema and make sure an admin token exists."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.control.repository import MIGRATIONS as CONTROL_MIGRATIONS
from services.control.repository import SCHEMA as CONTROL_SCHEMA
from services.shared.auth import Role, new_secret, new_token_id
from services.shared.db import apply_migrations, create_pool
from services.shared.token_repository import MIGRATIONS as AUTH_MIGRATIONS
from services.shared.token_repository import SCHEMA as AUTH_SCHEMA
from services.shared.token_repository import TokenRepository
from services.tracker.repository import MIGRATIONS as TRACKER_MIGRATIONS
from services.tracker.repository import SCHEMA as TRACKER_SCHEMA

SCHEMAS = [(AUTH_SCHEMA, AUTH_MIGRATIONS), (CONTROL_SCHEMA, CONTROL_MIGRATIONS), (TRACKER_SCHEMA, TRACKER_MIGRATIONS)]
ADMIN_TOKEN_NAME = "admin"
EXECUTOR_TOKEN_NAME = "executor"


def write_secret_file(path: Path, secret: str) -> None:
    """Write a secret readable by the owner only (0600), never briefly wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)


async def _ensure_token(tokens: TokenRepository, token_file: Path, name: str) -> tuple[str, bool]:
    """The secret saved in token_file if it still works, else a new admin-role token saved there."""
    if token_file.exists():
        saved = token_file.read_text().strip()
        if saved and await tokens.find_active(saved) is not None:
            return saved, False
    secret = new_secret()
    await tokens.create(token_id=new_token_id(), name=name, role=Role.ADMIN, secret=secret, created_by="autoloader up")
    write_secret_file(token_file, secret)
    return secret, True


@dataclass(frozen=True)
class Credentials:
    admin_token: str
    admin_token_is_new: bool
    executor_token: str


async def prepare_database(database_url: str, home: Path) -> Credentials:
    """Apply every schema's migrations; make sure the admin and executor tokens in `home` work."""
    pool = await create_pool(database_url, service="launcher", max_size=2)
    try:
        for schema, directory in SCHEMAS:
            await apply_migrations(pool, schema, directory)
        tokens = TokenRepository(pool)
        admin, admin_is_new = await _ensure_token(tokens, home / "admin-token", ADMIN_TOKEN_NAME)
        executor, _ = await _ensure_token(tokens, home / "executor-token", EXECUTOR_TOKEN_NAME)
        return Credentials(admin_token=admin, admin_token_is_new=admin_is_new, executor_token=executor)
    finally:
        await pool.close()
