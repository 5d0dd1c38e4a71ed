"""A doorbell for new outbox rows: the threads that push while evaluation goes on
(pipeline/overlap.py) wait on it instead of asking the state DB every half second whether a
chunk commit queued anything.

Only this process's commits ring it. Rows that come due by time (a retry's backoff, an
expired claim) or another agent's rows ring nothing: a waiter keeps a slow poll for those.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Doorbell:
    """Each listener gets an event of its own, set by every ``ring`` while it listens."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: set[threading.Event] = set()

    @contextmanager
    def listening(self) -> Iterator[threading.Event]:
        """An event set at each ring from now until the block ends (the listener clears it
        before it looks at the outbox, so a ring during the look is never missed)."""
        event = threading.Event()
        with self._lock:
            self._listeners.add(event)
        try:
            yield event
        finally:
            with self._lock:
                self._listeners.discard(event)

    def ring(self) -> None:
        """Wake every listener: rows were committed to the outbox."""
        with self._lock:
            listeners = list(self._listeners)
        for event in listeners:
            event.set()
