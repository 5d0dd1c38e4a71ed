"""Several HubSpot streams read at once, their pages handed over in one iterator.

Searches have a limit of their own (a few a second) and every other call shares the
ten-second limit, so a contacts sweep (searches) and the web events stream (plain pages) do not
slow each other; and while the caller stores a page, the next ones are already being fetched.
Each stream runs in a thread of its own and keeps its pages in order (its cursors advance with
its pages, so crash safety is the caller's page-by-page commit, as before); at most
``AHEAD`` pages per stream wait to be taken. An error in a stream is raised in the caller;
when the caller stops taking pages, the threads end at their next page.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from connectors.base import Page

AHEAD = 4          # pages fetched ahead per stream: bounds memory to a few pages each
_DONE = object()


class _Closed(Exception):
    """The consumer has gone: a producer stops."""


def interleave(readers: Sequence[Callable[[], Iterator[Page]]]) -> Iterator[Page]:
    """Pages of every reader, each reader's in its own order, as soon as they arrive."""
    if len(readers) <= 1:
        for read in readers:
            yield from read()
        return
    # Each reader has its own room of AHEAD pages: in one shared queue, a reader of cheap,
    # big pages (web events, a thousand a page) filled it while the caller stored them, and
    # the searched streams stopped sending, leaving the search limit idle.
    handoff: queue.SimpleQueue[tuple[int, object]] = queue.SimpleQueue()
    rooms = [threading.Semaphore(AHEAD) for _ in readers]
    closed = threading.Event()

    def put(reader: int, item: object) -> None:
        while not closed.is_set():
            if rooms[reader].acquire(timeout=0.2):
                handoff.put((reader, item))
                return
        raise _Closed

    def produce(reader: int) -> None:
        try:
            for page in readers[reader]():
                put(reader, page)
            put(reader, _DONE)
        except _Closed:
            return
        except BaseException as exc:  # handed to the consumer, raised there
            try:
                put(reader, exc)
            except _Closed:
                return

    pool = ThreadPoolExecutor(max_workers=len(readers), thread_name_prefix="hubspot-read")
    try:
        for reader in range(len(readers)):
            pool.submit(produce, reader)
        running = len(readers)
        while running:
            reader, item = handoff.get()
            rooms[reader].release()
            if item is _DONE:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                assert isinstance(item, Page)
                yield item
    finally:
        closed.set()
        pool.shutdown(wait=True, cancel_futures=True)
