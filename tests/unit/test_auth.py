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


def test_each_role_may_do_what_the_roles_below_it_may() -> None:
    ordered = [Role.VIEWER, Role.RUNNER, Role.EDITOR, Role.ADMIN]
    for position, role in enumerate(ordered):
        caller = Principal("p", role, "tok-1")
        for needed in ordered[: position + 1]:
            caller.require(needed, "doing it")
        for needed in ordered[position + 1 :]:
            with pytest.raises(PermissionDenied, match=f"needs the {needed.value} role; this token has {role.value}"):
                caller.require(needed, "doing it")


def test_capped_at_is_the_lower_role() -> None:
    assert Role.EDITOR.capped_at(Role.RUNNER) is Role.RUNNER
    assert Role.VIEWER.capped_at(Role.ADMIN) is Role.VIEWER
    assert Role.RUNNER.capped_at(Role.RUNNER) is Role.RUNNER
