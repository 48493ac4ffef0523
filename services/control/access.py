"""Who may do what to an ingestion. Pure rules, no I/O.

A caller's role on an ingestion is:
- admin token: admin, on every ingestion;
- the owner: the role of its token;
- a principal the ingestion is shared with: the lower of the shared role and its token's role;
- anyone else: none, and the ingestion is reported as not found, exactly like an id that does not exist,
  so its existence is not disclosed.
A caller who can see the ingestion but lacks the role for an action gets PermissionDenied naming both.
"""

from __future__ import annotations

import enum

from services.shared.auth import Principal, Role
from services.shared.errors import NotFound, PermissionDenied


class Action(enum.Enum):
    """Things done to an ingestion, with the role each needs and whether only the owner (or an admin) may."""

    READ = ("reading", Role.VIEWER, False)
    PREVIEW = ("previewing", Role.RUNNER, False)
    RUN = ("running", Role.RUNNER, False)
    CANCEL_RUN = ("cancelling a run of", Role.RUNNER, False)
    UPDATE = ("changing", Role.EDITOR, False)
    CLEAR_FILES = ("clearing the processed files of", Role.EDITOR, False)
    DELETE = ("deleting", Role.EDITOR, True)
    SHARE = ("sharing", Role.EDITOR, True)

    def __init__(self, verb: str, role: Role, owner_only: bool) -> None:
        self.verb = verb
        self.role = role
        self.owner_only = owner_only


def not_found(ingestion_id: str) -> NotFound:
    """The one answer for an ingestion that does not exist or that the caller may not see."""
    return NotFound(f"ingestion '{ingestion_id}' not found")


def role_on(caller: Principal, owner: str, shared_role: Role | None) -> Role | None:
    """The caller's role on an ingestion with this owner, shared with the caller at shared_role (or not)."""
    if caller.role is Role.ADMIN:
        return Role.ADMIN
    if caller.name == owner:
        return caller.role
    if shared_role is not None:
        return shared_role.capped_at(caller.role)
    return None


def authorize(caller: Principal, ingestion_id: str, owner: str, shared_role: Role | None, action: Action) -> None:
    """Raise NotFound when the caller cannot see the ingestion, PermissionDenied when it may not do this."""
    role = role_on(caller, owner, shared_role)
    if role is None:
        raise not_found(ingestion_id)
    what = f"{action.verb} ingestion '{ingestion_id}'"
    if role.rank < action.role.rank:
        raise PermissionDenied(f"{what} needs the {action.role.value} role; you have {role.value} on it")
    if action.owner_only and role is not Role.ADMIN and caller.name != owner:
        raise PermissionDenied(f"{what}: only its owner ({owner}) or an admin may do this")
