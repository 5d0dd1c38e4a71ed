"""Evaluation in worker processes: a cycle's chunks are read, evaluated and planned by forked
processes, on the other cores, while this process commits them in order.

Each worker reads its chunk's rows through a connection of its own, evaluates and plans every
person, and sends back each person's share of the commit (pipeline/pieces.py), its JSON column
values already the store's JSON text (encoded once, there, not here), through shared
memory (pipeline/wire.py). The main process takes the chunks back in the order they were
handed out, and hands each to the chunk writer's thread (pipeline/writer.py): one commit per
chunk, in order, as before. A crash loses at most the chunks not yet committed, which the
next cycle evaluates again.

The routing rotation is the one thing a person's evaluation carries to the next person's.
A worker is handed the rotation as the main process knows it when the chunk is handed out: a
guess, once chunks are evaluated side by side. The worker that evaluated the chunk before
posts the rotation that chunk left on a board in shared memory (`RotationBoard`), and the
first person of the chunk whose evaluation reads the rotation (one routed from a pool, a
territory or a named user: a person below MQL, or whose owner stays, never looks at it) waits
for it and reads it in place of the guess. So the workers' evaluation loops follow each other
through the rotation while the rest of their work (reading a chunk, planning, sending it
back) overlaps. The main process still walks each chunk's readers of the rotation in order
with the true rotation: where one read another rotation (a worker failed, the board timed
out), that person and every later one of the chunk who read it are evaluated again here. The
results are exactly the in-process path's either way.

Start method: fork. A worker must evaluate with the very rules, users, accounts and contexts
of this cycle; forked, it shares them with the main process (copy-on-write) and nothing is
pickled or loaded again. The cost of fork is the threads: a forked child holds only the
forking thread, and any lock another thread held stays held. So the workers are forked before
the chunk writer's thread starts; they never touch the parent's database connections (each
opens its own) nor the connectors (their threads may be pushing alongside); Python's logging
re-arms its locks after a fork. A worker that dies (killed, out of memory) or raises fails
the cycle with `WorkerFailed`, after the chunks before its chunk are committed.

Memory: a worker allocates little (6-14 MB in a 20k-lead backfill) but copies each inherited
page either process writes after the fork (75-100 MB there), so it grows with what the agent
holds at the fork: hence the collection and trim before it. A worker collects after a chunk,
not during it (~40 collections a chunk of its ~35,000 live containers took 6% of its CPU).
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
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
from syncagent.pipeline.wire import Sent, Slots, as_text, dumped

log = structlog.get_logger(__name__)

PR_SET_PDEATHSIG = 1   # prctl(2)
MAX_DEFAULT = 4   # beyond this the single committing thread, not evaluation, sets the pace
# A rotation pickles to ~15 bytes per user it counts in each pool (and in today's tally):
# 1 MiB holds some 25,000 users in two pools. A bigger one is not posted: each chunk is then
# evaluated on its guess and settled here, as when a wait ends without it.
BOARD_BYTES = 1 << 20
BOARD_WAIT = 120.0   # seconds (a chunk's evaluation takes about one); then the guess it is
YOUNG_COLLECTION = 50_000   # allocations between young collections while a pass runs


class WorkerFailed(RetryableError):
    """An evaluation worker process died or raised: the chunks before its chunk are stored,
    the rest is evaluated again by the next cycle."""

    default_hint = ("The next cycle evaluates these persons again. If it keeps happening, "
                    "look for memory limits (OOM kills) or set eval_workers to 0 to evaluate "
                    "in the agent's own process.")


def worker_count(setting: int | None, rescore: bool = False) -> int:
    """The setting, else one worker per core but one, at most MAX_DEFAULT; for a rescore,
    one per core. 0: evaluate in the agent's own process.

    A sync cycle's own process pulls, pushes and commits beside the workers: it keeps a
    core. A rescore's only commits (~75 µs a person against a worker's ~300, on SQLite):
    one worker would leave it mostly waiting (20k on 2 cores: ~2,800 persons/s with two)."""
    if setting is not None:
        return setting
    cores = available_cores()
    return max(0, min(cores if rescore and cores > 1 else cores - 1, MAX_DEFAULT))


def available_cores() -> int:
    """The cores this process may run on (its affinity, where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)


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


class RotationBoard:
    """Shared memory, inherited by the workers at the fork: the worker that evaluated a
    chunk posts the rotation it left (pickled), for the worker evaluating the next chunk.
    One chunk's rotation at a time: the next chunk's worker reads it (or gives up on it)
    before it posts its own."""

    def __init__(self, size: int = BOARD_BYTES, timeout: float = BOARD_WAIT) -> None:
        context = get_context("fork")
        self._timeout = timeout
        self._posted = context.Condition()
        self._index = context.RawValue("q", -1)    # the chunk whose rotation is posted
        self._length = context.RawValue("q", -1)   # of the pickle; -1: that chunk left none
        self._data = context.RawArray("c", size)   # zeroed: in every process's RSS, shared

    def post(self, index: int, routing: RoutingState | None) -> None:
        """Chunk ``index`` left ``routing`` (None: unknown, as when it failed). A chunk that
        fails posts at once, maybe before the chunk before it: that one's rotation, posted
        after, is nobody's to read and must not hide the failure from the next chunk."""
        blob = b"" if routing is None else pickle.dumps(routing, pickle.HIGHEST_PROTOCOL)
        with self._posted:
            if index < self._index.value:
                return
            if routing is None or len(blob) > len(self._data):   # too big: guessed, settled
                self._length.value = -1
            else:
                self._data[:len(blob)] = blob
                self._length.value = len(blob)
            self._index.value = index
            self._posted.notify_all()

    def wait(self, index: int) -> RoutingState | None:
        """The rotation chunk ``index`` left, once posted; None if it left none or never
        posted it in time (the main process then settles the chunk after it)."""
        with self._posted:
            if not self._posted.wait_for(lambda: self._index.value >= index, self._timeout):
                return None
            if self._index.value != index or self._length.value < 0:
                return None
            posted: RoutingState = pickle.loads(self._data[:self._length.value])
            return posted


class _Incoming:
    """The rotation a chunk starts from: chunk 0 is handed the true one, any other a guess;
    the true one is then the one the chunk before posts, waited for when first needed."""

    def __init__(self, board: RotationBoard, index: int, handed: RoutingState) -> None:
        self._board, self._index = board, index
        self._known: RoutingState | None = handed if index == 0 else None
        self._asked = index == 0

    def true(self) -> RoutingState | None:
        """None: the chunk before left none (it failed), or not in time."""
        if not self._asked:
            self._known = self._board.wait(self._index - 1)
            self._asked = True
        return self._known


class _Watched(RoutingState):
    """The rotation handed to one person's evaluation, read through: the engine's first look
    at a part notes which rotation it read (``read``): the true one, when handed a guess
    (``incoming``), so the engine never sees the guess. Only the three parts are watched."""

    read: RoutingState | None   # None: not read (yet)

    def __init__(self, handed: RoutingState, incoming: _Incoming | None) -> None:
        # (frozen: set past the dataclass's own setter)
        self.__dict__.update(_handed=handed, _incoming=incoming, read=None)

    def _look(self) -> RoutingState:
        read: RoutingState | None = self.read
        if read is None:
            incoming: _Incoming | None = self.__dict__["_incoming"]
            read = (incoming.true() if incoming is not None else None) or self.__dict__["_handed"]
            object.__setattr__(self, "read", read)
        return read

    @property
    def day(self) -> str | None:
        return self._look().day

    @property
    def assigned(self) -> Mapping[str, int]:
        return self._look().assigned

    @property
    def weights(self) -> Mapping[str, Mapping[str, int]]:
        return self._look().weights


def watching(reads: list[Read], incoming: _Incoming | None = None) -> Judge:
    """The engine's evaluate, noting each person whose evaluation read the rotation. With
    ``incoming``, the chunk's rotation is a guess until its first such person, who reads
    the true one in its place."""
    guessing = [incoming] if incoming is not None else []
    kept: list[Any] = [None, None]   # the rotation last handed in and its probe, unread:
    # most persons never read it, so one probe serves them all (one each: ~2.5 µs a person)

    def judge(person: PersonInput, rules: Rules, now: datetime, state: RoutingState,
              users: UserDirectory) -> tuple[Any, RoutingState]:
        if kept[0] is not state:
            kept[:] = state, _Watched(state, guessing[0] if guessing else None)
        probe = kept[1]
        outcome: tuple[Any, RoutingState] | None = None
        try:
            outcome = evaluate(person, rules, now, probe, users)
        finally:
            read = probe.read   # (a failed evaluation leaves the rotation as it read it)
            before = state if read is None else read
            after = before if outcome is None or outcome[1] is probe else outcome[1]
            if read is not None:
                kept[0] = None   # the next person gets a probe of their own
                guessing.clear()
                reads.append(Read(int(person.person_id), read, after))
        return outcome[0], after

    return judge


_worker: tuple[Job, StateStore, RotationBoard] | None = None
_slots: Slots | None = None   # in a worker: where its chunks' pickles go (pipeline/wire.py)


def _start(job: Job, parent: int, inherited: StateStore, board: RotationBoard,
           slots: Slots) -> None:
    """In a new worker: its own connections; stops come from the main process only (a
    Ctrl-C reaches the whole process group; the parent's SIGTERM handler is not ours)."""
    global _worker, _slots
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(parent)
    # the parent's pooled connections are never used, closed or reset here (SQLAlchemy's
    # recipe for a fork: the child drops the pool it inherited, untouched)
    inherited.engine.dispose(close=False)
    _worker, _slots = (job, StateStore(job.url), board), slots
    gc.disable()   # `_work` collects once a chunk is done (the module's docstring)


def _die_with(parent: int) -> None:
    """Linux: the kernel kills this worker when the thread that forked it ends, so a killed
    agent leaves none waiting forever (each holds the task queue's write end itself)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):   # not Linux: shutdown stops the workers
        return
    if os.getppid() != parent:   # the agent ended before the request was made
        os._exit(1)


def _work(index: int, person_ids: list[int], routing: RoutingState,
          slot: int | None = None) -> Sent:
    """In a worker: `_chunk`, then the collection left off while it ran (`_start`)."""
    try:
        return _chunk(index, person_ids, routing, slot)
    finally:
        gc.collect()


def _chunk(index: int, person_ids: list[int], routing: RoutingState,
           slot: int | None) -> Sent:
    """Evaluate, plan and derive one chunk, person by person; pickled into the ``slot`` it
    was lent (or as bytes, with none), for `Slots.take`. The rotation the chunk left is
    posted once its persons are evaluated, for the next chunk's worker; a failed chunk posts
    none, so that worker does not wait for it in vain."""
    assert _worker is not None, "a worker is started with its job"
    job, store, board = _worker
    incoming, posted = _Incoming(board, index, routing), False
    reads: list[Read] = []
    try:
        chunk = decide._evaluate_chunk(store, job.rules, person_ids, job.world, job.now,
                                       routing, watching(reads, incoming))
        known = incoming.true()   # None: the chunk's readers read a guess, settled there
        # read by nobody, the rotation leaves the chunk as it came in
        board.post(index, None if known is None else chunk.routing if reads else known)
        posted = True
    finally:
        if not posted:
            board.post(index, None)
    pieces = pieces_of(store, chunk, job.context, job.tasks, job.rules.source, job.now)
    for piece in pieces.values():
        as_text(piece)
    done = Done(person_ids, pieces, reads)
    return _slots.put(slot, done) if _slots is not None else dumped(done)


class EvaluationPool:
    """``workers`` forked processes evaluating chunks; `merged` gives them back in order,
    each as its commit, with the rotation after it (at most ``workers + 1`` handed out)."""

    def __init__(self, store: StateStore, job: Job, workers: int) -> None:
        self._store, self._job, self._workers = store, job, workers
        self._pool: ProcessPoolExecutor | None = None
        self._thresholds = gc.get_threshold()   # the collector's, restored after the pass
        self._slots = Slots(0)   # one per chunk handed out at a time, once started

    def start(self) -> bool:
        """Fork the workers, now (before the caller starts the writer's thread). False when
        they could not be started (no fork, no memory): the caller evaluates in process."""
        # What is alive now (rules, users, accounts, modules) is frozen: a collector's scan
        # writes to every object it visits, which in a worker copies each shared page.
        # Garbage is collected first (frozen, it would outlive the pass in every process),
        # and malloc's free pages go back to the OS: a worker inherits none of them.
        countries.load()   # built on first use otherwise: once in every worker
        gc.collect()
        memory.trim()
        gc.freeze()
        # A chunk's ~35,000 containers live until it is committed here: a young collection
        # every 700 allocations scans them again and again. One per YOUNG_COLLECTION
        # instead, for the pass: unpickling and merging 117 -> 73 µs a person (4 chunks).
        gc.set_threshold(YOUNG_COLLECTION, *self._thresholds[1:])
        try:
            self._slots = Slots.made(self._workers + 1)
            self._pool = ProcessPoolExecutor(self._workers, mp_context=get_context("fork"),
                                             initializer=_start,
                                             initargs=(self._job, os.getpid(), self._store,
                                                       RotationBoard(), self._slots))
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
        self._slots.close()
        gc.unfreeze()
        gc.set_threshold(*self._thresholds)

    def merged(self, chunks: Iterable[Sequence[int]], routing: RoutingState
               ) -> Iterator[tuple[Merged, RoutingState]]:
        pending = enumerate(chunks)
        window: deque[tuple[list[int], int | None, Future[Sent]]] = deque()
        while True:
            self._hand_out(pending, window, routing)
            if not window:
                return
            ids, slot, future = window.popleft()
            merged, routing = self._settle(
                self._slots.take(slot, partial(_result, ids, future)), routing)
            yield merged, routing

    def _hand_out(self, pending: Iterator[tuple[int, Sequence[int]]],
                  window: deque[tuple[list[int], int | None, Future[Sent]]],
                  routing: RoutingState) -> None:
        """Keep ``workers + 1`` chunks handed out: every worker stays busy while this process
        merges a chunk, and no more results wait here than that."""
        assert self._pool is not None
        while len(window) <= self._workers and (chunk := next(pending, None)) is not None:
            index, ids = chunk[0], list(chunk[1])
            try:
                slot, future = self._slots.lend(
                    partial(self._pool.submit, _work, index, ids, routing))
                window.append((ids, slot, future))
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
