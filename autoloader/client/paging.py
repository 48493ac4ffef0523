"""Lists that arrive one page at a time, read as one iterator."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# The API's largest page.
MAX_PAGE_SIZE = 1000

# fetch(page_token, page_size) -> (items of the page, next_page_token); "" ends the list.
PageFetcher = Callable[[str, int], tuple[Sequence[T], str]]


def iterate_pages(fetch: PageFetcher[T], *, page_size: int | None = None, limit: int | None = None) -> Iterator[T]:
    """Every item of every page, fetched lazily; at most `limit` items. page_size None or 0 leaves the size
    to the server (with a limit: pages no larger than it)."""
    if limit is not None and limit <= 0:
        return
    remaining = limit
    token = ""
    while True:
        size = page_size or 0
        if remaining is not None:
            size = min(size or MAX_PAGE_SIZE, remaining, MAX_PAGE_SIZE)
        items, token = fetch(token, size)
        for item in items:
            yield item
            if remaining is not None:
                remaining -= 1
                if remaining == 0:
                    return
        if not token:
            return
