"""Record a system's push results on a thread of its own, so its next batch is sent while
the last one's results are stored.

Recording a batch (its outbox rows settled, the values in the mirror, the links of what it
created) is state DB work: done on the push thread between two sends, it held HubSpot's
next call back by a third of the thread's time (bench/e2e.py --timeline, 20k leads). Here
the push thread hands each answered batch over and sends the next; one recorder per system
and push stores the batches in order, in one transaction per batch, or per few batches when
several wait (``MERGE_MOST``).

What is kept:
- bounded memory: at most ``AHEAD`` batches wait; a push thread that gets further ahead
  waits for the recorder (backpressure), whatever the size of the outbox;
- order: a batch is recorded after the ones sent before it, and a push (``push``) returns
  only once all it sent is recorded: what a round created is linked before anything reads
  the links or plans an update to it (the read-back, the next round, the settle's plan);
- errors surface: a recording that fails settles its rows (as a failed batch: retry, or put
  back on a stop) and its error is raised in the push thread before the next send and when
  the push ends, so the push step fails and the cycle is recorded failed; nothing is lost.

A crash at each point (the outbox rows are claimed, ``in_flight``, until recorded):
- before a batch is sent: its rows are in flight under this process; the next start
  releases them (``release_orphaned_claims``) or their claim expires: sent once, later;
- after it is sent and before its results commit (queued or being recorded): the same,
  but the batch may have landed: its rows go out again marked as sent before (not
  ``never_sent``), which is what the outbox already handles after a crash between a send
  and its recording: updates, upserts by key and list changes are idempotent, and a create
  sent before is looked for before it is made again. At most ``AHEAD`` + 1 batches per
  system are in that state, instead of one;
- after its results commit: done; the outbox rows, the mirror's values and the links are
  one transaction, so never one without the others.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType

import structlog

from state.recording import RecordedBatch
from state.store import OutboxResult, StateStore
from syncagent.errors import RetryableError, SyncAgentError, stops_system

log = structlog.get_logger(__name__)

AHEAD = 4        # batches sent and not yet recorded, at most, per system
MERGE_MOST = 4   # batches recorded in one transaction, at most


class Recorder:
    """A context: records submitted batches in order on one thread until the block ends,
    and records every batch submitted before it returns, even when the block failed."""

    def __init__(self, store: StateStore, system: str, *, ahead: int = AHEAD) -> None:
        self.store = store
        self._batches: queue.Queue[RecordedBatch | None] = queue.Queue(maxsize=ahead)
        self._errors: list[BaseException] = []   # recordings that failed, not raised yet
        self._lock = threading.Lock()
        # in the push thread's context: what its log lines are bound to
        self._thread = threading.Thread(target=contextvars.copy_context().run,
                                        args=(self._run,), name=f"recorder-{system}",
                                        daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._batches.put(None)
        self._thread.join()

    def submit(self, batch: RecordedBatch) -> None:
        """Hand over an answered batch; waits while ``AHEAD`` batches are not recorded."""
        self._batches.put(batch)

    def raise_failed(self) -> None:
        """Raise the first recording error since the last call (each was logged when it
        happened; the rows of each are settled already)."""
        with self._lock:
            errors, self._errors = self._errors, []
        if errors:
            raise errors[0]

    def _run(self) -> None:
        ended = False
        while not ended:
            batches, ended = self._waiting()
            if batches:
                self._record(batches)

    def _waiting(self) -> tuple[list[RecordedBatch], bool]:
        """The next batches (one, or up to ``MERGE_MOST`` when more wait), and whether the
        block has ended (nothing comes after them)."""
        taken = [self._batches.get()]
        while taken[-1] is not None and len(taken) < MERGE_MOST:
            try:
                taken.append(self._batches.get_nowait())
            except queue.Empty:
                break
        return [batch for batch in taken if batch is not None], taken[-1] is None

    def _record(self, batches: list[RecordedBatch]) -> None:
        try:
            self.store.commit_push_results(batches)
        except BaseException as error:   # raised in the push thread, not here
            log.error("push results not recorded; their rows are settled as a failed batch",
                      batches=len(batches), error=type(error).__name__)
            settle(self.store, [i for batch in batches for i in batch.row_ids], error)
            with self._lock:
                self._errors.append(error)


def settle(store: StateStore, ids: Sequence[int], exc: BaseException) -> int:
    """Rows whose results were not recorded (their batch raised, or its recording did). A
    stop that is not the records' fault (credentials, quota, budget, shutdown) puts them
    back as they were; any other failure counts as an attempt, so a batch that always fails
    ends as dead letters instead of blocking the queue. Rows already recorded (done) are
    left alone. Returns how many were counted as retried."""
    code = str(getattr(exc, "fields", {}).get("code") or type(exc).__name__)
    message = exc.message if isinstance(exc, SyncAgentError) else \
        f"{type(exc).__name__} while pushing this batch"
    try:
        if stops_system(exc) or not isinstance(exc, Exception):
            store.outbox.release(ids, code=code, message=message)
            return 0
        retry_at = None
        if isinstance(exc, RetryableError) and exc.retry_after is not None:
            retry_at = datetime.now(UTC) + timedelta(seconds=exc.retry_after)
        store.outbox.complete([OutboxResult(i, "retryable", code=code, message=message,
                                            retry_at=retry_at) for i in ids])
        return len(ids)
    except Exception as again:  # the state DB itself: the claims expire and are re-claimed
        log.error("claimed rows not settled; they are claimed again when the claim expires",
                  rows=len(ids), error=type(again).__name__)
        return 0
