"""One-shot setup of a fresh deployment: make sure the admin token and the service token exist.

The services authenticate every call against the tokens in the database (schema `auth`), and control and the
executors need a working service token (AUTOLOADER_TOKEN) before anyone could create one over the API. This
script applies the `auth` schema and registers the secrets it is given, so a deployment can keep both in its
own secret store:

    AUTOLOADER_DATABASE_URL   the services' PostgreSQL
    BOOTSTRAP_ADMIN_TOKEN     token for people and tooling (admin role)
    BOOTSTRAP_SERVICE_TOKEN   token that control and the executors send (admin role; their AUTOLOADER_TOKEN)

Secrets look like `alk_` followed by 32-64 URL-safe characters:
    python3 -c "import secrets; print('alk_' + secrets.token_urlsafe(32))"
Running it again is harmless: a secret that already works is left alone.
"""

from __future__ import annotations

import asyncio
import os

from services.shared.auth import Role, hash_secret, new_token_id, secret_from_authorization
from services.shared.db import apply_migrations, create_pool
from services.shared.errors import AutoloaderError
from services.shared.token_repository import MIGRATIONS, SCHEMA, TokenRepository

TOKENS = {"admin": "BOOTSTRAP_ADMIN_TOKEN", "service": "BOOTSTRAP_SERVICE_TOKEN"}


def _secrets() -> dict[str, str]:
    found = {}
    for name, variable in TOKENS.items():
        secret = os.environ.get(variable, "").strip()
        if not secret:
            raise SystemExit(f"bootstrap: {variable} is not set")
        try:
            secret_from_authorization(f"Bearer {secret}")  # the shape every service accepts
        except AutoloaderError:
            raise SystemExit(f"bootstrap: {variable} must be 'alk_' followed by 32-64 URL-safe characters") from None
        found[name] = secret
    return found


async def bootstrap(database_url: str, secrets: dict[str, str]) -> None:
    pool = await create_pool(database_url, service="bootstrap", max_size=1)
    try:
        await apply_migrations(pool, SCHEMA, MIGRATIONS)
        tokens = TokenRepository(pool)
        for name, secret in secrets.items():
            if await tokens.find_active(secret) is not None:
                print(f"bootstrap: token {name!r} already registered")
                continue
            # A revoked token keeps its hash: registering the same secret again would break the unique index.
            if await pool.fetchval("SELECT 1 FROM auth.tokens WHERE secret_hash = $1", hash_secret(secret)):
                raise SystemExit(f"bootstrap: the {name} token was revoked; set a new secret")
            await tokens.create(
                token_id=new_token_id(), name=name, role=Role.ADMIN, secret=secret, created_by="bootstrap"
            )
            print(f"bootstrap: token {name!r} registered")
    finally:
        await pool.close()


def main() -> None:
    database_url = os.environ.get("AUTOLOADER_DATABASE_URL", "")
    if not database_url:
        raise SystemExit("bootstrap: AUTOLOADER_DATABASE_URL is not set")
    asyncio.run(bootstrap(database_url, _secrets()))


if __name__ == "__main__":
    main()
