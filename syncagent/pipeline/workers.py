"""Evaluation in worker processes: a cycle's chunks are read, evaluated and planned by forked
processes, on the other cores, while this process commits them in order.

Each worker reads its chunk's rows through a connection of its own, evaluates and plans every
person, and sends back each person's share of the commit (pipeline/pieces.py). The main
process takes the chunks back in the order they were handed out, and hands each to the chunk
writer's thread (pipeline/writer.py): one commit per chunk, in order, as before. A crash loses
at most the chunks not yet committed, which the next cycle evaluates again.

The routing rotation is the one thing a person's evaluation carries to the next person's.
A worker is handed the rotation as the main process knows it when the chunk is handed out,
and notes which persons read it (only those routed from a pool, a territory or a named user:
a person below MQL, or whose owner stays, never looks at it). The main process walks the
chunk's persons in order with the true rotation: where a person read a rotation other than
the true one, that person and every later one of the chunk who read it are evaluated again
here, with the true rotation. The rotation changes only when a lead is assigned, so this is
rare; the results are exactly the in-process path's either way.

Start method: fork. A worker must evaluate with the very rules, users, accounts and contexts
of this cycle; forked, it shares them with the main process (copy-on-write) and nothing is
pickled or loaded again. The cost of fork is the threads: a forked child holds only the
forking thread, and any lock another thread held stays held. So the workers are forked before
the chunk writer's thread starts; they never touch the parent's database connections (each
opens its own) nor the connectors (their threads may be pushing alongside); Python's logging
re-arms its locks after a fork. A worker that dies (killed, out of memory) or raises fails
the cycle with `WorkerFailed`, after the chunks before its chunk are committed.

Memory: what a worker allocates itself is small (its RSS grows 6-14 MB past what it inherits
in a 20k-lead backfill). What it costs beyond that, 75-100 MB there (bench/e2e.py,
``tree_at_pss_peak_mb``), is its own copy of each inherited page that either process writes
after the fork: the reference counts of every object a chunk touches (modules, rules, the
world), and the agent's heap, which its pushes and merges reuse. It grows with what the agent
holds at the fork (~180 MB after a pull, of which ~25 MB live Python objects), hence the
collection and the trim before it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy.engine import make_url

from state.store import StateStore
from syncagent import memory
from syncagent.engine import PersonInput, RoutingState, Rules, UserDirectory, countries, evaluate
from syncagent.errors import RetryableError
from syncagent.pipeline import decide
from syncagent.pipeline.decide import Judge, World
from syncagent.pipeline.pieces import Merged, Piece, merge, pieces_of
from syncagent.pipeline.plan import PlanContext
from syncagent.pipeline.tasks import TaskContext

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1   # prctl(2)
MAX_DEFAULT = 4   # beyond this the single committing thread, not evaluation, sets the pace
_ROTATION = frozenset({"day", "assigned", "weights"})


class WorkerFailed(RetryableError):
    """An evaluation worker process died or raised: the chunks before its chunk are stored,
    the rest is evaluated again by the next cycle."""

    default_hint = ("The next cycle evaluates these persons again. If it keeps happening, "
                    "look for memory limits (OOM kills) or set eval_workers to 0 to evaluate "
                    "in the agent's own process.")


def worker_count(setting: int | None) -> int:
    """The setting, else one worker per core but one (the main process commits), at most
    MAX_DEFAULT. 0: evaluate in the agent's own process."""
    if setting is not None:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)
    return max(0, min(cores - 1, MAX_DEFAULT))


def can_share(url: str) -> bool:
    """Workers read the state DB through connections of their own: not an in-memory one."""
    parsed = make_url(url)
    return not (parsed.get_backend_name() == "sqlite"
                and parsed.database in (None, "", ":memory:"))


@dataclass(frozen=True)
class Job:
    """What every chunk of one evaluation pass shares (the workers inherit it by fork)."""

    url: str
    rules: Rules
    world: World
    context: PlanContext
    tasks: TaskContext
    now: datetime


@dataclass(frozen=True)
class Read:
    """A person whose evaluation read the rotation: as it was handed in, and as it left."""

    person_id: int
    before: RoutingState
    after: RoutingState


@dataclass
class Done:
    """A worker's chunk: each person's piece, and who read the rotation (in order)."""

    person_ids: list[int]
    pieces: dict[int, Piece]
    read: list[Read] = field(default_factory=list)


class _Watched(RoutingState):
    """The rotation handed to one person's evaluation; notes whether the engine read it."""

    def __getattribute__(self, name: str) -> Any:
        if name in _ROTATION:
            object.__setattr__(self, "_read", True)   # frozen: the dataclass's own setter
        return super().__getattribute__(name)


def watching(reads: list[Read]) -> Judge:
    """The engine's evaluate, noting each person whose evaluation read the rotation."""

    def judge(person: PersonInput, rules: Rules, now: datetime, state: RoutingState,
              users: UserDirectory) -> tuple[Any, RoutingState]:
        plain = RoutingState(state.day, state.assigned, state.weights)
        probe = _Watched(plain.day, plain.assigned, plain.weights)
        after: RoutingState = plain   # a failed evaluation leaves the rotation as it was
        try:
            decision, out = evaluate(person, rules, now, probe, users)
            after = plain if out is probe else out
            return decision, after
        finally:
            if "_read" in vars(probe):
                reads.append(Read(int(person.person_id), plain, after))

    return judge


_worker: tuple[Job, StateStore] | None = None
_carried: tuple[int, RoutingState] | None = None   # (chunk index, the rotation it left)


def _start(job: Job, parent: int, inherited: StateStore) -> None:
    """In a new worker: its own connections; stops come from the main process only (a
    Ctrl-C reaches the whole process group; the parent's SIGTERM handler is not ours)."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(parent)
    # the parent's pooled connections are never used, closed or reset here (SQLAlchemy's
    # recipe for a fork: the child drops the pool it inherited, untouched)
    inherited.engine.dispose(close=False)
    _worker = (job, StateStore(job.url))


def _die_with(parent: int) -> None:
    """Linux: the kernel kills this worker when the thread that forked it ends. A killed
    agent must not leave its workers behind, each waiting for a chunk forever (they hold the
    task queue's write end themselves, so they would never see it close)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):   # not Linux: shutdown stops the workers
        return
    if os.getppid() != parent:   # the agent ended before the request was made
        os._exit(1)


def _work(index: int, person_ids: list[int], routing: RoutingState) -> bytes:
    """In a worker: evaluate, plan and derive one chunk, person by person; pickled here, to
    be read back by `_loads`. When this worker evaluated the chunk just before, the rotation
    it left is a better guess than the one handed in (which the main process knew when it
    handed the chunk out): with one worker, it is always the true one."""
    global _carried
    assert _worker is not None, "a worker is started with its job"
    job, store = _worker
    if _carried is not None and _carried[0] == index - 1:
        routing = _carried[1]
    reads: list[Read] = []
    chunk = decide._evaluate_chunk(store, job.rules, person_ids, job.world, job.now, routing,
                                   watching(reads))
    _carried = (index, chunk.routing)
    pieces = pieces_of(store, chunk, job.context, job.tasks, job.rules.source, job.now)
    return pickle.dumps(Done(person_ids, pieces, reads), protocol=pickle.HIGHEST_PROTOCOL)


def _loads(blob: bytes) -> Done:
    """A worker's chunk, unpickled with the collector paused: the ~50,000 objects of a chunk
    would otherwise set off collections that scan all the process holds, several times per
    chunk (they cost more than the unpickling itself)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        done: Done = pickle.loads(blob)
    finally:
        if paused:
            gc.enable()
    return done


class EvaluationPool:
    """``workers`` forked processes evaluating chunks; `merged` gives the chunks back in
    order, each as its commit, with the rotation after it. At most ``workers + 1`` chunks are
    handed out at a time: the results wait in this process only that long."""

    def __init__(self, store: StateStore, job: Job, workers: int) -> None:
        self._store, self._job, self._workers = store, job, workers
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> bool:
        """Fork the workers, now (before the caller starts the writer's thread). False when
        they could not be started (no fork, no memory): the caller evaluates in process."""
        # What is alive now (rules, users, accounts, the modules) is never scanned by the
        # collector again, here or in the workers: a scan writes to every object it visits,
        # which in a forked worker copies each page it shares with this process. Garbage is
        # collected first (frozen, it would outlive the pass in every process), and malloc's
        # free pages go back to the OS: a worker inherits none of them.
        countries.load()   # built on first use otherwise: once in every worker
        gc.collect()
        memory.trim()
        gc.freeze()
        try:
            self._pool = ProcessPoolExecutor(self._workers, mp_context=get_context("fork"),
                                             initializer=_start,
                                             initargs=(self._job, os.getpid(),
                                                       self._store))
            self._pool.submit(os.getpid).result()   # the first call forks every worker
        except (OSError, BrokenProcessPool) as exc:
            log.warning("evaluation workers not started; evaluating in process",
                        error=type(exc).__name__)
            self._stop()
            return False
        return True

    def __enter__(self) -> EvaluationPool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        gc.unfreeze()

    def merged(self, chunks: Iterable[Sequence[int]], routing: RoutingState
               ) -> Iterator[tuple[Merged, RoutingState]]:
        pending = enumerate(chunks)
        window: deque[tuple[list[int], Future[bytes]]] = deque()
        while True:
            self._hand_out(pending, window, routing)
            if not window:
                return
            ids, future = window.popleft()
            merged, routing = self._settle(_loads(_result(ids, future)), routing)
            yield merged, routing

    def _hand_out(self, pending: Iterator[tuple[int, Sequence[int]]],
                  window: deque[tuple[list[int], Future[bytes]]], routing: RoutingState) -> None:
        """Keep ``workers + 1`` chunks handed out: every worker stays busy while this process
        merges a chunk, and no more results wait here than that."""
        assert self._pool is not None
        while len(window) <= self._workers and (chunk := next(pending, None)) is not None:
            index, ids = chunk[0], list(chunk[1])
            try:
                window.append((ids, self._pool.submit(_work, index, ids, routing)))
            except BrokenProcessPool:   # a worker died since the last chunk came back
                raise _died(window[0][0] if window else ids) from None

    def _settle(self, done: Done, routing: RoutingState) -> tuple[Merged, RoutingState]:
        """Walk the chunk's readers of the rotation with the true rotation; from the first
        who read another one, evaluate them again here."""
        pieces = done.pieces
        for n, read in enumerate(done.read):
            if read.before != routing:
                again = [r.person_id for r in done.read[n:]]
                job = self._job
                chunk = decide._evaluate_chunk(self._store, job.rules, again, job.world,
                                               job.now, routing)
                pieces = {**pieces, **pieces_of(self._store, chunk, job.context, job.tasks,
                                                job.rules.source, job.now)}
                routing = chunk.routing
                break
            routing = read.after
        return merge(done.person_ids, pieces), routing


def _result(ids: list[int], future: Future[Any]) -> Any:
    try:
        return future.result()
    except BrokenProcessPool:   # every chunk handed out fails with it
        raise _died(ids) from None
    except Exception as exc:   # only the type: the text may quote record values
        raise WorkerFailed(f"an evaluation worker failed ({type(exc).__name__}) on persons "
                           f"{ids[0]}-{ids[-1]}: persons from {ids[0]} on were not stored"
                           ) from exc


def _died(ids: list[int]) -> WorkerFailed:
    """A worker died: every chunk handed out is lost with it, from ``ids`` on."""
    return WorkerFailed(f"an evaluation worker process died (killed, or out of memory): "
                        f"persons from {ids[0]} on were not stored")
