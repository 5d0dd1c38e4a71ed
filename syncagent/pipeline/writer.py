"""Commit a cycle's evaluated chunks on a thread of their own while the next chunk is read
and evaluated.

A chunk's commit is mostly the database's own work (SQLite's C code, or the Postgres server
and the wait for it), which runs without the interpreter lock; done on this thread it
overlaps the evaluation of the next chunk instead of following it. The chunks are committed
one at a time, in the order given (one writer, as SQLite wants), and each commit is still one
transaction: a crash loses at most the chunks not yet committed, which the next cycle
evaluates again, exactly as before.

What the next chunk reads (its persons' records, decisions, timers and task keys) is never
what the chunks before it write, so reading it while they commit changes nothing. A chunk is
handed over only once the commit before it has ended: two chunks at most are in memory (one
committing, one evaluated or being evaluated), whatever the number of persons.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from functools import partial
from types import TracebackType

Job = Callable[[], None]


class ChunkWriter:
    """Runs submitted commits in order on one thread. The first commit that fails stops the
    rest (they are skipped, as the loop would never have reached them) and its error is
    raised to the caller at its next ``submit`` or when the block ends. When the caller's
    block fails, the commits already submitted still run before the error goes on: chunks
    evaluated before a failure are stored, as they were when commits ran inline."""

    def __init__(self, depth: int = 1) -> None:
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._slots = threading.Semaphore(depth)   # commits submitted and not yet ended
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="chunk-writer", daemon=True)

    def __enter__(self) -> ChunkWriter:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._jobs.put(None)
        self._thread.join()
        if kind is None:
            self._raise_if_failed()

    def submit(self, job: Job) -> None:
        """Hand over a commit; waits while ``depth`` commits have not ended. It runs in the
        caller's context as it is now (what the log lines it writes are bound to)."""
        self._slots.acquire()
        self._raise_if_failed()
        self._jobs.put(partial(contextvars.copy_context().run, job))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if self._error is None:   # a commit failed: the ones after it are not made
                    job()
            except BaseException as error:   # handed to the caller's thread, raised there
                self._error = error
            finally:
                self._slots.release()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
