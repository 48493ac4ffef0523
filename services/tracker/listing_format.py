"""The packed form of a source listing sent to the tracker: tab-separated lines in PostgreSQL's COPY text
format, so the tracker loads a million entries with one COPY instead of decoding a million messages."""

from __future__ import annotations

from collections.abc import Iterable

from services.tracker.models import FileEntry

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escaped(text: str) -> str:
    return text.translate(_ESCAPES)


def pack(entries: Iterable[FileEntry]) -> bytes:
    """Lines of key, etag, size and last_modified (RFC 3339, with its offset)."""
    return "".join(
        f"{_escaped(e.key)}\t{_escaped(e.etag)}\t{e.size}\t{e.last_modified.isoformat()}\n" for e in entries
    ).encode()


def chunk_lines(packed: bytes, entries: Iterable[FileEntry]) -> bytes:
    """A message's files, packed ones first, as complete lines."""
    if packed and not packed.endswith(b"\n"):
        packed += b"\n"
    return packed + pack(entries)


def with_listing_id(packed: bytes, listing_id: str) -> bytes:
    """The lines with the listing's id (a run or preview id: plain ASCII) as their first column."""
    if not packed:
        return b""
    if not packed.endswith(b"\n"):
        packed += b"\n"
    prefix = listing_id.encode("ascii") + b"\t"
    return prefix + packed[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
