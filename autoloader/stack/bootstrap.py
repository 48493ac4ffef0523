"""First-start work of `autoloader up`: migrate every schema and make sure an admin token exists."""

from __future__ import annotations

import os
from pathlib import Path

from services.control.repository import MIGRATIONS as CONTROL_MIGRATIONS
from services.control.repository import SCHEMA as CONTROL_SCHEMA
from services.shared.auth import Role, new_secret, new_token_id
from services.shared.db import apply_migrations, create_pool
from services.shared.token_repository import MIGRATIONS as AUTH_MIGRATIONS
from services.shared.token_repository import SCHEMA as AUTH_SCHEMA
from services.shared.token_repository import TokenRepository

SCHEMAS = [(AUTH_SCHEMA, AUTH_MIGRATIONS), (CONTROL_SCHEMA, CONTROL_MIGRATIONS)]
ADMIN_TOKEN_NAME = "admin"


def write_secret_file(path: Path, secret: str) -> None:
    """Write a secret readable by the owner only (0600), never briefly wider."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)


async def prepare_database(database_url: str, token_file: Path) -> str | None:
    """Apply migrations; create an admin token unless token_file already holds a working one.

    Returns the new token's secret, or None when the saved one is still valid.
    """
    pool = await create_pool(database_url, service="launcher", max_size=2)
    try:
        for schema, directory in SCHEMAS:
            await apply_migrations(pool, schema, directory)
        tokens = TokenRepository(pool)
        if token_file.exists():
            saved = token_file.read_text().strip()
            if saved and await tokens.find_active(saved) is not None:
                return None
        secret = new_secret()
        await tokens.create(
            token_id=new_token_id(), name=ADMIN_TOKEN_NAME, role=Role.ADMIN, secret=secret, created_by="autoloader up"
        )
        write_secret_file(token_file, secret)
        return secret
    finally:
        await pool.close()
