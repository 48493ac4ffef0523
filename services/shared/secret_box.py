"""Encryption at rest of the secrets the services store (webhook secrets), with keys that rotate.

A stored secret reads `enc:v1:<Fernet token>`. The keys are a list: the first encrypts, every one decrypts, so
a new key goes first and the old ones stay after it until every stored secret was rotated to the new one.
A value without the prefix was stored before encryption existed: it is read as it is and encrypted when it is
next written or rotated.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.shared.config import ServiceSettings
from services.shared.logging import get_logger

_log = get_logger("secrets")
PREFIX = "enc:v1:"
# The key file used when neither AUTOLOADER_SECRET_KEYS nor AUTOLOADER_SECRET_KEYS_FILE is set.
DEFAULT_KEY_FILE = "secret-keys"
_FIX = (
    "list the key it was encrypted with in AUTOLOADER_SECRET_KEYS (or AUTOLOADER_SECRET_KEYS_FILE) after the"
    " first key, then restart"
)


class SecretKeysError(ValueError):
    """The configured keys are unusable; the message names the variable (never a key)."""


class UndecryptableSecret(RuntimeError):
    """A stored secret that none of the configured keys decrypts. Not an AutoloaderError on purpose: callers
    see a generic internal error and the message (which holds no secret) goes to the service log."""


class SecretBox:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise SecretKeysError("configuration error: no secret key configured")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(key) for key in keys])

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> SecretBox:
        """Keys from AUTOLOADER_SECRET_KEYS, else AUTOLOADER_SECRET_KEYS_FILE, else $AUTOLOADER_HOME/secret-keys
        (made, mode 0600, on first use)."""
        if settings.secret_keys is not None and settings.secret_keys_file is not None:
            raise SecretKeysError(
                "configuration error: set AUTOLOADER_SECRET_KEYS or AUTOLOADER_SECRET_KEYS_FILE, not both"
            )
        if settings.secret_keys is not None:
            return cls(parse_keys(settings.secret_keys.get_secret_value(), "AUTOLOADER_SECRET_KEYS"))
        if settings.secret_keys_file is not None:
            return cls(_keys_from_file(settings.secret_keys_file, "AUTOLOADER_SECRET_KEYS_FILE"))
        path = settings.home / DEFAULT_KEY_FILE
        ensure_key_file(path)
        return cls(_keys_from_file(path, f"the default key file {path}"))

    @staticmethod
    def is_encrypted(stored: str) -> bool:
        return stored.startswith(PREFIX)

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._primary.encrypt(plaintext.encode()).decode()

    def decrypt(self, stored: str, *, what: str = "a stored secret") -> str:
        """The plaintext of a stored value (a legacy plaintext value as it is)."""
        if not self.is_encrypted(stored):
            return stored
        try:
            return self._all.decrypt(self._token(stored)).decode()
        except InvalidToken:
            raise UndecryptableSecret(f"{what} cannot be decrypted with the configured keys: {_FIX}") from None

    def stored_form(self, value: str) -> str:
        """A value read from storage, encrypted if it was legacy plaintext (encrypted values stay as they are)."""
        return value if self.is_encrypted(value) else self.encrypt(value)

    def rotated(self, stored: str, *, what: str = "a stored secret") -> str | None:
        """The value encrypted under the first key, or None when it already is."""
        if not self.is_encrypted(stored):
            return self.encrypt(stored)
        token = self._token(stored)
        try:
            self._primary.decrypt(token)
            return None
        except InvalidToken:
            pass
        try:
            return PREFIX + self._all.rotate(token).decode()
        except InvalidToken:
            raise UndecryptableSecret(f"{what} cannot be decrypted with the configured keys: {_FIX}") from None

    @staticmethod
    def _token(stored: str) -> bytes:
        return stored.removeprefix(PREFIX).encode()


async def rotate_all(
    secret_box: SecretBox,
    stored: Iterable[tuple[str, str]],
    write: Callable[[str, str, str], Awaitable[bool]],
) -> int:
    """Rotate each (row id, stored value) that is not under the first key with write(row id, new, old), which
    must only replace `old` (compare-and-set: replicas rotating at once, or a concurrent write, lose nothing).
    A value no key decrypts is logged by row id and left. Returns how many were rewritten."""
    rotated = 0
    for row_id, value in stored:
        try:
            new = secret_box.rotated(value, what=f"the secret of {row_id}")
        except UndecryptableSecret as error:
            _log.error("stored secret not rotated", row=row_id, error=str(error))
            continue
        if new is not None and await write(row_id, new, value):
            rotated += 1
    return rotated


def parse_keys(text: str, source: str) -> list[bytes]:
    """Comma- or line-separated Fernet keys; a bad one is reported by position, never echoed."""
    keys = [part.strip().encode() for part in text.replace("\n", ",").split(",") if part.strip()]
    if not keys:
        raise SecretKeysError(f"configuration error: {source}: no key given")
    for number, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise SecretKeysError(
                f"configuration error: {source}: key {number} is not a Fernet key (32 url-safe base64-encoded"
                " bytes; make one with: python -c 'from cryptography.fernet import Fernet;"
                " print(Fernet.generate_key().decode())')"
            ) from None
    return keys


def _keys_from_file(path: Path, source: str) -> list[bytes]:
    try:
        text = path.read_text()
    except OSError as error:
        raise SecretKeysError(f"configuration error: {source}: cannot read {path}: {error.strerror}") from None
    return parse_keys(text, source)


def ensure_key_file(path: Path) -> None:
    """Create a key file readable by its owner only, unless it exists. Services that share the directory may
    start at once: the file appears complete (written aside, then linked in) and the first one made wins."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another service made it first: keep theirs
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
