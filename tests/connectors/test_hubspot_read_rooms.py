"""Streams read at once each have their own room of pages fetched ahead: a stream of cheap,
big pages (web events) that the caller is slow to store must not stop the searched streams,
whose limit is the one a backfill's pull waits on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from connectors.base import Cursor, Page
from connectors.hubspot.concurrent import AHEAD, interleave


def _reader(stream: str, n: int, fetched: dict[str, int], *, start_after: float = 0.0
            ) -> Callable[[], Iterator[Page]]:
    def read() -> Iterator[Page]:
        time.sleep(start_after)
        for i in range(n):
            fetched[stream] += 1
            yield Page(stream=stream, object=stream, records=[], cursor=Cursor(last_id=str(i)),
                       done=i == n - 1)
    return read


def _until(condition: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_a_stream_the_caller_is_slow_to_store_does_not_hold_back_the_others() -> None:
    """The caller takes one page and then stores it for a long time. The events stream has
    filled its room by then; the searched stream, starting later, still fetches a room of
    its own, and neither fetches more than its room."""
    fetched = {"events": 0, "contacts": 0}
    reading = interleave([_reader("events", 1_000, fetched),
                          _reader("contacts", 50, fetched, start_after=0.2)])
    first = next(reading)                        # ... and the caller is busy storing it
    assert first.stream == "events"
    assert _until(lambda: fetched["contacts"] > AHEAD)
    time.sleep(0.1)                              # room to overrun, were there no bound
    assert fetched["contacts"] == AHEAD + 1      # a room waiting, one more in hand
    assert fetched["events"] <= AHEAD + 2        # the page taken, a room, one in hand
    reading.close()


def test_every_page_still_arrives_once_in_its_streams_order() -> None:
    fetched = {"a": 0, "b": 0, "c": 0}
    pages = list(interleave([_reader("a", 40, fetched), _reader("b", 9, fetched),
                             _reader("c", 0, fetched)]))
    for stream, n in (("a", 40), ("b", 9)):
        assert [p.cursor.last_id for p in pages if p.stream == stream] == [
            str(i) for i in range(n)]
    assert len(pages) == 49
    assert not [t for t in threading.enumerate() if t.name.startswith("hubspot-read")]
