"""Streams read at once: each stream's pages keep their order (their cursors commit in it), an
error in one stream reaches the caller, and a caller that stops ends the readers."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from connectors.base import Cursor, Page
from connectors.hubspot.concurrent import interleave


def _pages(stream: str, n: int, pause: float = 0.0) -> Iterator[Page]:
    for i in range(n):
        time.sleep(pause)
        yield Page(stream=stream, object=stream, records=[], cursor=Cursor(last_id=str(i)),
                   done=i == n - 1)


def test_each_streams_pages_arrive_in_order_and_all_arrive() -> None:
    pages = list(interleave([lambda: _pages("a", 30, 0.001), lambda: _pages("b", 7, 0.004),
                             lambda: _pages("c", 0)]))
    for stream, n in (("a", 30), ("b", 7)):
        ids = [p.cursor.last_id for p in pages if p.stream == stream]
        assert ids == [str(i) for i in range(n)]
    assert len(pages) == 37


def test_an_error_in_one_stream_is_raised_in_the_caller() -> None:
    def broken() -> Iterator[Page]:
        yield from _pages("bad", 2)
        raise RuntimeError("search failed")

    with pytest.raises(RuntimeError, match="search failed"):
        for _ in interleave([lambda: _pages("ok", 1000, 0.001), broken]):
            pass


def test_a_caller_that_stops_taking_pages_ends_the_readers() -> None:
    produced = []
    gone = threading.Event()

    def endless() -> Iterator[Page]:
        try:
            for page in _pages("x", 10_000):
                produced.append(page)
                yield page
        finally:
            gone.set()

    reading = interleave([endless, lambda: _pages("y", 3)])
    for _ in range(5):
        next(reading)
    reading.close()
    assert gone.wait(5)
    assert len(produced) < 100     # fetched ahead a few pages, not the whole stream
