"""Stored secrets encrypted with Fernet keys that rotate (services.shared.secret_box)."""

from __future__ import annotations

import asyncio
import stat
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from services.shared.config import ServiceSettings
from services.shared.secret_box import (
    DEFAULT_KEY_FILE,
    PREFIX,
    SecretBox,
    SecretKeysError,
    UndecryptableSecret,
    rotate_all,
)

PLAINTEXT = "webhook-secret-of-the-unit-tests"


def new_key() -> bytes:
    return Fernet.generate_key()


def settings(home: Path, **fields: object) -> ServiceSettings:
    return ServiceSettings(database_url=SecretStr("postgresql://u@h/db"), home=home, **fields)  # type: ignore[arg-type]


def test_a_secret_comes_back_and_is_stored_recognisably_without_its_plaintext() -> None:
    box = SecretBox([new_key()])
    stored = box.encrypt(PLAINTEXT)
    assert stored.startswith(PREFIX) and PLAINTEXT not in stored
    assert box.decrypt(stored) == PLAINTEXT
    assert box.encrypt(PLAINTEXT) != stored  # a fresh IV each time: equal secrets do not look equal


def test_rotation_moves_old_values_to_the_first_key_and_leaves_current_ones() -> None:
    old, new = new_key(), new_key()
    stored_old = SecretBox([old]).encrypt(PLAINTEXT)
    box = SecretBox([new, old])
    assert box.decrypt(stored_old) == PLAINTEXT  # old keys still decrypt
    rotated = box.rotated(stored_old)
    assert rotated is not None and SecretBox([new]).decrypt(rotated) == PLAINTEXT
    assert box.rotated(rotated) is None  # idempotent: already under the first key
    assert box.rotated(box.encrypt(PLAINTEXT)) is None


def test_a_value_no_key_decrypts_is_a_clear_error_without_the_value() -> None:
    stored = SecretBox([new_key()]).encrypt(PLAINTEXT)
    other = SecretBox([new_key()])
    with pytest.raises(UndecryptableSecret) as raised:
        other.decrypt(stored, what="the webhook secret of ingestion 'x'")
    message = str(raised.value)
    assert "the webhook secret of ingestion 'x'" in message and "AUTOLOADER_SECRET_KEYS" in message
    assert PLAINTEXT not in message and stored.removeprefix(PREFIX) not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    with pytest.raises(UndecryptableSecret):
        other.rotated(stored)


def test_legacy_plaintext_is_read_as_it_is_and_encrypted_when_rotated() -> None:
    box = SecretBox([new_key()])
    assert box.decrypt(PLAINTEXT) == PLAINTEXT
    rotated = box.rotated(PLAINTEXT)
    assert rotated is not None and box.decrypt(rotated) == PLAINTEXT
    assert box.stored_form(PLAINTEXT) != PLAINTEXT and box.stored_form(rotated) == rotated


def test_keys_come_from_the_variable_first_key_encrypting(tmp_path: Path) -> None:
    first, second = new_key(), new_key()
    box = SecretBox.from_settings(settings(tmp_path, secret_keys=SecretStr(f" {first.decode()} , {second.decode()} ")))
    stored = box.encrypt(PLAINTEXT)
    assert SecretBox([first]).decrypt(stored) == PLAINTEXT
    with pytest.raises(UndecryptableSecret):
        SecretBox([second]).decrypt(stored)
    assert not (tmp_path / DEFAULT_KEY_FILE).exists()


def test_keys_come_from_a_file_one_per_line_or_comma_separated(tmp_path: Path) -> None:
    first, second = new_key(), new_key()
    key_file = tmp_path / "keys"
    key_file.write_text(f"{first.decode()}\n{second.decode()}\n")
    box = SecretBox.from_settings(settings(tmp_path, secret_keys_file=key_file))
    assert SecretBox([first]).decrypt(box.encrypt(PLAINTEXT)) == PLAINTEXT
    assert box.decrypt(SecretBox([second]).encrypt(PLAINTEXT)) == PLAINTEXT


def test_without_keys_a_0600_key_file_in_home_is_made_once_and_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    stored = SecretBox.from_settings(settings(home)).encrypt(PLAINTEXT)
    key_file = home / DEFAULT_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox.from_settings(settings(home)).decrypt(stored) == PLAINTEXT
    assert [p.name for p in home.iterdir()] == [DEFAULT_KEY_FILE]  # no draft left behind


def test_services_starting_at_once_share_one_default_key(tmp_path: Path) -> None:
    boxes: list[SecretBox] = []
    threads = [
        threading.Thread(target=lambda: boxes.append(SecretBox.from_settings(settings(tmp_path)))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = boxes[0].encrypt(PLAINTEXT)
    assert all(box.decrypt(stored) == PLAINTEXT for box in boxes)


@pytest.mark.parametrize(
    ("fields", "variable"),
    [
        ({"secret_keys": SecretStr("not-a-fernet-key")}, "AUTOLOADER_SECRET_KEYS"),
        ({"secret_keys": SecretStr(" , ")}, "AUTOLOADER_SECRET_KEYS"),
        ({"secret_keys_file": Path("/nonexistent/keys")}, "AUTOLOADER_SECRET_KEYS_FILE"),
    ],
)
def test_a_bad_key_is_a_configuration_error_naming_the_variable(
    tmp_path: Path, fields: dict[str, object], variable: str
) -> None:
    with pytest.raises(SecretKeysError) as raised:
        SecretBox.from_settings(settings(tmp_path, **fields))
    assert variable in str(raised.value) and "not-a-fernet-key" not in str(raised.value)


def test_a_second_bad_key_is_named_by_position(tmp_path: Path) -> None:
    with pytest.raises(SecretKeysError, match="AUTOLOADER_SECRET_KEYS: key 2 is not a Fernet key"):
        SecretBox.from_settings(settings(tmp_path, secret_keys=SecretStr(f"{new_key().decode()},short")))


def test_both_key_sources_at_once_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretKeysError, match="not both"):
        SecretBox.from_settings(
            settings(tmp_path, secret_keys=SecretStr(new_key().decode()), secret_keys_file=tmp_path / "k")
        )


def test_rotate_all_rewrites_only_stale_values_and_skips_undecryptable_ones() -> None:
    old, new = new_key(), new_key()
    box = SecretBox([new, old])
    rows = {
        "legacy": PLAINTEXT,
        "old": SecretBox([old]).encrypt(PLAINTEXT),
        "current": box.encrypt(PLAINTEXT),
        "lost": SecretBox([new_key()]).encrypt(PLAINTEXT),
    }
    before = dict(rows)

    async def write(row_id: str, new_value: str, old_value: str) -> bool:
        if rows[row_id] != old_value:
            return False
        rows[row_id] = new_value
        return True

    assert asyncio.run(rotate_all(box, list(rows.items()), write)) == 2
    assert rows["current"] == before["current"] and rows["lost"] == before["lost"]
    assert all(SecretBox([new]).decrypt(rows[name]) == PLAINTEXT for name in ("legacy", "old", "current"))
    assert asyncio.run(rotate_all(box, list(rows.items()), write)) == 0
