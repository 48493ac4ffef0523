"""Which local directories file:// sources may read.

A file:// source makes the executor read files on its own host with its own rights, and the rows land in a
table its creator can query. Without a limit an editor could ingest the service's own state: tokens, the
keys that encrypt stored secrets, the embedded database. So the service's home directory is never readable,
and deployments can name the only directories local sources may read (or none at all).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOTS_VARIABLE = "AUTOLOADER_LOCAL_SOURCE_ROOTS"
ANY_DIRECTORY = "*"


@dataclass(frozen=True)
class LocalSourcePolicy:
    """roots: the directories sources must lie in (None: any). forbidden: never readable, inside any root."""

    roots: tuple[Path, ...] | None = None
    forbidden: tuple[Path, ...] = ()

    @classmethod
    def from_setting(cls, roots: str, home: Path) -> LocalSourcePolicy:
        """roots as AUTOLOADER_LOCAL_SOURCE_ROOTS holds it: '*' any directory, '' none, else comma-separated
        absolute directories. home (the service's own state) is always forbidden."""
        forbidden = (_normal(home),)
        if roots.strip() == ANY_DIRECTORY:
            return cls(None, forbidden)
        entries = [entry.strip() for entry in roots.split(",") if entry.strip()]
        relative = [entry for entry in entries if not entry.startswith("/")]
        if relative:
            raise ValueError(f"{ROOTS_VARIABLE}: {relative[0]!r} is not an absolute directory")
        return cls(tuple(_normal(Path(entry)) for entry in entries), forbidden)

    def refusal(self, directory: Path, *, resolve_links: bool) -> str | None:
        """Why a source may not read below `directory`, or None. resolve_links follows symbolic links, which
        only the host that reads the files can do."""
        path = Path(os.path.realpath(directory)) if resolve_links else _normal(directory)
        for forbidden in self.forbidden:
            checked = Path(os.path.realpath(forbidden)) if resolve_links else forbidden
            if _within(path, checked) or _within(checked, path):
                return f"{path} holds the service's own state (its home directory {forbidden})"
        if self.roots is None:
            return None
        if not self.roots:
            return f"local sources are turned off here ({ROOTS_VARIABLE} is empty)"
        roots = [Path(os.path.realpath(root)) if resolve_links else root for root in self.roots]
        if any(_within(path, root) for root in roots):
            return None
        return f"{path} is outside the directories local sources may read ({ROOTS_VARIABLE})"


def _normal(path: Path) -> Path:
    return Path(os.path.normpath(path.expanduser()))


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
