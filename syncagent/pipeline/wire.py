"""What crosses from an evaluation worker to the main process: a chunk's `Done` (its persons'
pieces, pipeline/pieces.py), pickled, its JSON column values already the store's text.

A chunk of 1,000 persons pickles to ~5 MB, nearly all of it that JSON text. Sent back as the
pool's result, those bytes were copied five times (the worker's pickle, the pool's pickle of
it, the pipe's 64 KB pieces, each a wake-up on both ends, the main's buffer, the bytes
unpickled out of it): ~8 µs a person of the main process's CPU and ~2.5 of a worker's. So
the pickle is written straight into shared memory the main process mapped before the fork
(`Slots`, one slot per chunk that can be out at once), and only its length crosses the pipe;
the main unpickles it in place and hands the pages back to the system. A pickle too big
for its slot, or a chunk handed out with no slot free, goes through the pipe as before.
"""

from __future__ import annotations

import gc
import mmap
import pickle
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar, cast

from state.common import as_tuples
from state.handoff import FeedbackRow, StageChange, TaskRecord, TimerRow
from state.outbox import NewOutboxRow
from state.sanitise import dumps
from syncagent.pipeline.handoff import NO_HANDOFF, HandoffParts
from syncagent.pipeline.pieces import Piece

if TYPE_CHECKING:
    from syncagent.pipeline.workers import Done

#: A slot's address space; only the pages a chunk's pickle fills take memory, and only until
#: the main process has read them. 1,000 persons of a rescore take ~4 MB; a bigger chunk
#: takes the pipe. Kept small all the same: under strict overcommit a shared mapping is
#: charged whole when it is made (workers + 1 of them).
SLOT_BYTES = 16 << 20
#: Linux: frees a shared mapping's pages (the next chunk's pickle gets zeroed ones).
_FREE = getattr(mmap, "MADV_REMOVE", None)

#: What `_work` returns: the pickle itself, or its length in the slot it was lent.
Sent = bytes | int
Handed = TypeVar("Handed")


def as_text(piece: Piece) -> None:
    """The piece's JSON column values (a decision's reasons, each write's fields, each
    handoff row's detail) as the store's JSON text (`sanitise.dumps`) in UTF-8, and each
    planned write and handoff row as the tuple of its fields (`common.as_tuples`): the main
    process binds both as they come (common._Slot.column), where it would encode each
    value again (a person's dicts hold ~200 keys and values) and read each row's attribute
    dict. Bytes (a JSON value is never bytes: `dumps` takes them as its text made) and
    tuples, not wrapper objects: a pickle writes and reads them in C, where each wrapper
    cost a call of Python; ~6 us a person less for a worker to pickle, ~13 for the
    main process to unpickle (a captured 1,000-person chunk). Read by nobody here after
    planning; the rows are this chunk's own (frozen dataclasses: set through
    ``object.__setattr__``). Data-quality items are left as objects: they are stored
    elsewhere (quality.record)."""
    if piece.decision is not None:
        piece.decision["reasons"] = utf8(piece.decision["reasons"])
    piece.rows = _sent(piece.rows, NewOutboxRow, "fields")
    if piece.handoff is NO_HANDOFF:
        return
    history, timers, cancelled, tasks, feedback, outbox, flags = piece.handoff
    piece.handoff = cast(HandoffParts, (
        _sent(history, StageChange, "detail"), _sent(timers, TimerRow, "detail"), cancelled,
        _sent(tasks, TaskRecord, "detail"), _sent(feedback, FeedbackRow, "detail"),
        _sent(outbox, NewOutboxRow, "fields"), flags))


def _sent(rows: Sequence[Any], kind: type, json: str) -> Any:
    """Rows of ``kind`` as their tuples, their ``json`` field's value as `utf8` text."""
    for row in rows:
        if type(row) is not tuple:
            object.__setattr__(row, json, utf8(getattr(row, json)))
    return as_tuples(rows, kind) if rows else rows


def utf8(value: Any) -> bytes:
    """``value``'s JSON text as the store writes it, in UTF-8 (bytes stay as they are: a
    row two pieces share is made once)."""
    return value if type(value) is bytes else dumps(value).encode()


def loads(blob: bytes | memoryview) -> Done:
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


def dumped(done: Done) -> bytes:
    """``done`` pickled, to cross the pipe."""
    return pickle.dumps(done, pickle.HIGHEST_PROTOCOL)


class Slots:
    """Shared memory the workers inherit at the fork: ``count`` slots, each holding one
    chunk's pickle from the worker that made it until the main process has read it. The
    main process lends a slot with each chunk it hands out (`lend`) and takes it back with
    the chunk (`take`); a worker only ever writes the slot it was lent."""

    def __init__(self, count: int, size: int = SLOT_BYTES) -> None:
        self._maps = [mmap.mmap(-1, size) for _ in range(count)]   # shared, anonymous
        self._free = deque(range(count))

    @classmethod
    def made(cls, count: int) -> Slots:
        """``count`` slots; none when the address space for them is refused (a strict
        overcommit limit): every chunk then crosses the pipe, as it did before slots."""
        try:
            return cls(count, SLOT_BYTES)
        except OSError:
            return cls(0)

    def lend(self, hand_out: Callable[[int | None], Handed]) -> tuple[int | None, Handed]:
        """A free slot (None: all are out; the chunk uses the pipe), and what ``hand_out``
        gives for the chunk it is lent with. A hand-out that raises (a broken pool) gets no
        slot: it is free again, or the pool would run out of them."""
        slot = self._free.popleft() if self._free else None
        try:
            return slot, hand_out(slot)
        except BaseException:
            self._release(slot, 0)
            raise

    def put(self, slot: int | None, done: Done) -> Sent:
        """In a worker: ``done`` pickled into ``slot`` (its length), or as bytes when no
        slot was lent or the pickle outgrows it."""
        if slot is not None:
            space = self._maps[slot]
            space.seek(0)
            try:
                pickle.Pickler(space, pickle.HIGHEST_PROTOCOL).dump(done)
                return space.tell()
            except ValueError:   # past the slot's end ("data out of range"): the pipe
                pass
        return dumped(done)

    def take(self, slot: int | None, result: Callable[[], Sent]) -> Done:
        """In the main process: the chunk a worker sent (``result`` waits for what it sent),
        and ``slot`` free again, whether that chunk came, failed or cannot be read. A worker
        that raised may have filled a part of the slot: all its pages go back."""
        used = len(self._maps[slot]) if slot is not None else 0   # all of it, until known
        try:
            sent = result()
            if isinstance(sent, bytes):   # no slot, or it outgrew the slot (holding a part)
                return loads(sent)
            assert slot is not None
            used = sent
            with memoryview(self._maps[slot]) as whole, whole[:sent] as pickled:
                return loads(pickled)
        finally:
            self._release(slot, used)

    def _release(self, slot: int | None, used: int) -> None:
        """``slot`` free again, the ``used`` bytes of its pages given back."""
        if slot is not None:
            self._free.append(slot)
            _give_back(self._maps[slot], used)

    def close(self) -> None:
        for space in self._maps:
            space.close()
        self._maps, self._free = [], deque()


def _give_back(space: mmap.mmap, used: int) -> None:
    """The pages a chunk's pickle filled go back to the system (in every process: they are
    shared), so that the slots hold memory only while a chunk waits in them. Where the
    system cannot, they stay, and the next chunk writes over them."""
    if _FREE is None or not used:
        return
    with suppress(OSError):
        space.madvise(_FREE, 0, min(len(space), -(-used // mmap.PAGESIZE) * mmap.PAGESIZE))
