"""Push while evaluation goes on: the rows each evaluated chunk queues are written at once.

Evaluation is CPU work and pushing waits on the APIs (HubSpot's rate limit binds a backfill), so
running them one after the other adds their times. A thread per system drains its outbox rows
in rounds while the chunks are evaluated; each round is an ordinary ``push`` (claims,
per-record results, nothing dropped), so crash safety is the outbox's as before, sending whole
batches only (a part batch waits for the rows still to come rather than cost a call of its
own). With ``finish`` (the cycle's), each thread sends its system's rest, part batches too,
as soon as evaluation ends, so one system's last round never holds back the other's rest;
the cycle's own push after that writes what is still left (list changes, rows due later). A
system that stops (quota, credentials) is not pushed to again in this cycle.

A round that found nothing to write waits for the next chunk commit that queues rows (the
outbox's doorbell), not for a timer: polling the outbox (its claims, its due counts) every
half second cost the state DB a read per system per poll for the whole of a backfill's
evaluation. A slow poll stays for rows that come due by time (a retry's backoff).

The records a round creates are read back at once (settle.read_back: their persons are
marked dirty first), while the rate limit has room to spare beside evaluation, instead of
all after the last push; ``settled`` names them, so the cycle reads back only the rest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType

import structlog

from connectors.base import Connector
from state.store import StateStore
from syncagent.pipeline.push import PushResult, push
from syncagent.pipeline.records import is_person
from syncagent.pipeline.settle import read_back

log = structlog.get_logger(__name__)

# After a round that found nothing to write: the next round starts when a commit queues rows,
# or after FALLBACK_POLL_SECONDS (rows due by time); a stop is seen within STOP_CHECK_SECONDS.
FALLBACK_POLL_SECONDS = 5.0
STOP_CHECK_SECONDS = 0.5


class PushAlongside:
    """A context: pushes in a thread per system until the block ends; ``result`` is what
    every round did, merged. Each system has its own thread, so a round of one (Salesforce's
    calls follow each other at its latency) never holds the other's next round back."""

    def __init__(self, connectors: Mapping[str, Connector], store: StateStore, holder: str,
                 stop: threading.Event, *, defer: frozenset[str] = frozenset(),
                 finish: bool = False) -> None:
        self.connectors = dict(connectors)
        self.store = store
        self.holder = holder
        self.stop = stop
        self.defer = defer
        # when the block ends without an error, each thread sends its system's rest (part
        # batches too) at once, instead of the cycle's push after both threads have ended
        self.finish = finish
        self.result = PushResult()
        self.settled: set[tuple[str, str, str]] = set()   # created records read back
        self._lock = threading.Lock()   # the threads merge into result and settled
        self._finished = threading.Event()
        self._bells: list[threading.Event] = []   # each thread's, set to end its wait
        self._completed = False   # the block ended without an error: the last push may go
        self._threads = [threading.Thread(target=self._run, args=(system, connector),
                                          name=f"push-alongside-{system}", daemon=True)
                         for system, connector in self.connectors.items()]

    def __enter__(self) -> PushAlongside:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._completed = kind is None
        self._finished.set()
        with self._lock:
            for bell in self._bells:
                bell.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()

    def _run(self, system: str, connector: Connector) -> None:
        with self.store.outbox.doorbell.listening() as bell:
            with self._lock:
                self._bells.append(bell)
            self._rounds(system, connector, bell)

    def _rounds(self, system: str, connector: Connector, bell: threading.Event) -> None:
        up = {system: connector}
        while not self._finished.is_set() and not self.stop.is_set():
            bell.clear()   # before the round looks: rows committed from now on ring again
            part = push(up, self.store, self.holder, self.stop, defer=self.defer,
                        full_batches=True)
            with self._lock:
                self.result.merge(part)
            if system in part.stopped:   # quota, credentials: not pushed to again this cycle
                return
            if part.failures:   # the cycle is failed already; the last push tries again
                log.warning("push alongside evaluation stopped", system=system,
                            failures=len(part.failures))
                return
            if not self._read_back(part, connector):
                return
            if not _did_anything(part):
                self._idle(bell)
        if self.finish and self._completed and not self.stop.is_set():
            # evaluation is over: this system's last rows go now, part batches too, not once
            # the other system's round has ended (HubSpot sat idle 20 s of a 40k backfill)
            self._round(system, connector, full_batches=False)

    def _idle(self, bell: threading.Event) -> None:
        """Wait for rows: a ring, the slow poll's time, the block's end or a stop."""
        deadline = time.monotonic() + FALLBACK_POLL_SECONDS
        while not self._finished.is_set() and not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or bell.wait(min(left, STOP_CHECK_SECONDS)):
                return

    def _round(self, system: str, connector: Connector, *, full_batches: bool) -> None:
        part = push({system: connector}, self.store, self.holder, self.stop,
                    defer=self.defer, full_batches=full_batches)
        with self._lock:
            self.result.merge(part)
        if system not in part.stopped and not part.failures:
            self._read_back(part, connector)

    def _read_back(self, part: PushResult, connector: Connector) -> bool:
        """Read back what the round created; False when that failed (the state DB): the
        cycle's own push and read-back then do the rest, as without this thread."""
        people = [ref for ref in part.created_refs if is_person(ref[0], ref[1])]
        if not people or self.stop.is_set():
            return True
        try:
            read_back([connector], self.store, people, part.created_persons)
        except Exception as error:
            log.warning("read-back alongside evaluation stopped", system=connector.system,
                        error=type(error).__name__)
            return False
        with self._lock:
            self.settled.update(people)
        return True


def _did_anything(part: PushResult) -> bool:
    return bool(sum(part.written.values()) or sum(part.created.values()) or part.rejected
                or part.retried or part.list_changes)
