from __future__ import annotations

import pytest

from services.shared.auth import Principal, Role, hash_secret, new_secret, secret_from_authorization
from services.shared.errors import PermissionDenied, Unauthenticated


def test_new_secrets_parse_back_and_hash_stably() -> None:
    secret = new_secret()
    assert secret_from_authorization(f"Bearer {secret}") == secret
    assert secret_from_authorization(f"bearer   {secret} ") == secret
    assert hash_secret(secret) == hash_secret(secret)
    assert hash_secret(secret) != hash_secret(new_secret())


@pytest.mark.parametrize(
    "header", [None, "", "Basic dXNlcjpwdw==", "Bearer", "Bearer abc", "Bearer alk_short", "Bearer a b"]
)
def test_missing_or_malformed_headers_are_unauthenticated(header: str | None) -> None:
    with pytest.raises(Unauthenticated):
        secret_from_authorization(header)


def test_roles_and_ownership() -> None:
    viewer = Principal("v", Role.VIEWER, "tok-1")
    editor = Principal("alice", Role.EDITOR, "tok-2")
    admin = Principal("root", Role.ADMIN, "tok-3")
    with pytest.raises(PermissionDenied):
        viewer.require(Role.EDITOR, "creating")
    editor.require(Role.EDITOR, "creating")
    editor.require_owner_or_admin("alice", "changing")
    with pytest.raises(PermissionDenied, match="owner"):
        editor.require_owner_or_admin("bob", "changing")
    admin.require_owner_or_admin("bob", "changing")
    with pytest.raises(PermissionDenied):
        viewer.require_owner_or_admin("v", "changing")
