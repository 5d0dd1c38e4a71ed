"""HubSpot's list paging: every list, search and events answer names its next page in
``paging.next.after``; the last page has no ``paging.next``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

PageFetch = Callable[[str | None], dict[str, Any]]


def next_after(data: Mapping[str, Any]) -> str | None:
    """The ``after`` token of the page that follows ``data`` (None: ``data`` is the last)."""
    after = ((data.get("paging") or {}).get("next") or {}).get("after")
    return None if after is None else str(after)


def walk(fetch: PageFetch, *, after: str | None = None
         ) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Each page from ``after`` on, with the token of the page after it (None on the last).

    Lazy: a page is fetched only when the caller asks for it, so a caller that stops early
    (or fails on a page) makes no further call."""
    while True:
        data = fetch(after)
        after = next_after(data)
        yield data, after
        if after is None:
            return
