"""Push while evaluation goes on: the rows each evaluated chunk queues are written at once.

Evaluation is CPU work and pushing waits on the APIs (HubSpot's rate limit binds a backfill), so
running them one after the other adds their times. A thread drains the outbox in rounds while
the chunks are evaluated; each round is an ordinary ``push`` (claims, per-record results,
nothing dropped), so crash safety is the outbox's as before, sending whole batches only (a
part batch waits for the rows still to come rather than cost a call of its own). The
cycle's own push after evaluation writes what is left. A system that stops (quota,
credentials) is not pushed to again in this cycle.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import TracebackType

import structlog

from connectors.base import Connector
from state.store import StateStore
from syncagent.pipeline.push import PushResult, push

log = structlog.get_logger(__name__)

IDLE_WAIT_SECONDS = 0.5   # between rounds that found nothing to write


class PushAlongside:
    """A context: pushes in a thread of its own until the block ends; ``result`` is what
    every round did, merged."""

    def __init__(self, connectors: Mapping[str, Connector], store: StateStore, holder: str,
                 stop: threading.Event, *, defer: frozenset[str] = frozenset()) -> None:
        self.connectors = dict(connectors)
        self.store = store
        self.holder = holder
        self.stop = stop
        self.defer = defer
        self.result = PushResult()
        self._finished = threading.Event()
        self._thread = threading.Thread(target=self._run, name="push-alongside", daemon=True)

    def __enter__(self) -> PushAlongside:
        if self.connectors:
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._finished.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        up = dict(self.connectors)
        while up and not self._finished.is_set() and not self.stop.is_set():
            part = push(up, self.store, self.holder, self.stop, defer=self.defer,
                        full_batches=True)
            self.result.merge(part)
            for system in part.stopped:
                up.pop(system, None)
            if part.failures:   # the cycle is failed already; the last push tries again
                log.warning("push alongside evaluation stopped", failures=len(part.failures))
                return
            if not _did_anything(part):
                self._finished.wait(IDLE_WAIT_SECONDS)


def _did_anything(part: PushResult) -> bool:
    return bool(sum(part.written.values()) or sum(part.created.values()) or part.rejected
                or part.retried or part.list_changes)
