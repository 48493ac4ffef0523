"""The rules of who may do what to an ingestion (services/control/access.py), without any service."""

from __future__ import annotations

import pytest

from services.control.access import Action, authorize, role_on
from services.shared.auth import Principal, Role
from services.shared.errors import NotFound, PermissionDenied

OWNER = "alice"


def caller(role: Role, name: str = "bob") -> Principal:
    return Principal(name, role, "tok-1")


@pytest.mark.parametrize("role", list(Role))
def test_a_stranger_sees_nothing_unless_admin(role: Role) -> None:
    expected = Role.ADMIN if role is Role.ADMIN else None
    assert role_on(caller(role), OWNER, None) is expected


@pytest.mark.parametrize("role", list(Role))
def test_the_owner_acts_with_its_token_role(role: Role) -> None:
    assert role_on(caller(role, OWNER), OWNER, None) is role


@pytest.mark.parametrize(
    ("token_role", "shared_role", "expected"),
    [
        (Role.EDITOR, Role.VIEWER, Role.VIEWER),
        (Role.VIEWER, Role.EDITOR, Role.VIEWER),
        (Role.RUNNER, Role.EDITOR, Role.RUNNER),
        (Role.EDITOR, Role.RUNNER, Role.RUNNER),
        (Role.EDITOR, Role.EDITOR, Role.EDITOR),
    ],
)
def test_a_share_gives_the_lower_of_the_shared_and_the_token_role(
    token_role: Role, shared_role: Role, expected: Role
) -> None:
    assert role_on(caller(token_role), OWNER, shared_role) is expected


def test_invisible_is_not_found_with_the_same_message_as_a_missing_id() -> None:
    with pytest.raises(NotFound) as hidden:
        authorize(caller(Role.EDITOR), "ing-1", OWNER, None, Action.READ)
    assert hidden.value.message == "ingestion 'ing-1' not found"


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.VIEWER, {Action.READ}),
        (Role.RUNNER, {Action.READ, Action.PREVIEW, Action.RUN, Action.CANCEL_RUN}),
        (Role.EDITOR, {Action.READ, Action.PREVIEW, Action.RUN, Action.CANCEL_RUN, Action.UPDATE, Action.CLEAR_FILES}),
    ],
)
def test_a_shared_role_allows_exactly_its_actions_and_never_delete_or_share(role: Role, allowed: set[Action]) -> None:
    for action in Action:
        if action in allowed:
            authorize(caller(Role.EDITOR), "ing-1", OWNER, role, action)
        else:
            with pytest.raises(PermissionDenied, match="ing-1"):
                authorize(caller(Role.EDITOR), "ing-1", OWNER, role, action)


def test_the_owner_and_admins_may_delete_and_share() -> None:
    for action in (Action.DELETE, Action.SHARE):
        authorize(caller(Role.EDITOR, OWNER), "ing-1", OWNER, None, action)
        authorize(caller(Role.ADMIN), "ing-1", OWNER, None, action)
        with pytest.raises(PermissionDenied, match="needs the editor role"):
            authorize(caller(Role.RUNNER, OWNER), "ing-1", OWNER, None, action)
