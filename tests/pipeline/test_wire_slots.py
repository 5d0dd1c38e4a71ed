"""A worker's chunk crosses to the main process through shared memory (pipeline/wire.py
`Slots`): only its length goes through the pool's pipe; what the main process reads back is
the chunk the worker pickled, and the slot is free for the next chunk. A pickle too big for
its slot, or a chunk handed out with no slot free, crosses the pipe as bytes, as before.

That the stored results stay the in-process path's, and that a worker that dies or raises
fails the cycle as before, is tests/pipeline/test_workers.py's (its pools use the slots)."""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any

import pytest

from state.store import NewOutboxRow
from syncagent.engine import RoutingState
from syncagent.pipeline import wire
from syncagent.pipeline import workers as pool_module
from syncagent.pipeline.pieces import Piece
from syncagent.pipeline.wire import Slots
from syncagent.pipeline.workers import Done, Read
from tests.pipeline.test_rescore_equivalence import two_urls as two_urls  # the fixture
from tests.pipeline.test_workers import _compare_with_in_process
from tests.pipeline.test_workers import small_chunks as small_chunks  # the fixture
from tests.pipeline.test_workers import urls as urls  # the fixture

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def _done(persons: int = 50, text: int = 100) -> Done:
    pieces = {pid: Piece(NOW, {"person_id": pid, "reasons": b"x" * text},
                         [NewOutboxRow("hubspot", "contacts", "update", f"[{pid}]".encode(),  # type: ignore[arg-type]
                                       f"k{pid}", str(pid), pid)])
              for pid in range(1, persons + 1)}
    rotation = RoutingState.from_dict(None)
    return Done(list(pieces), pieces, [Read(1, rotation, rotation)])


def _texts(done: Done) -> list[str]:
    return [text for piece in done.pieces.values() if piece.decision is not None
            for text in (piece.decision["reasons"], *(row.fields for row in piece.rows))]


def _same(a: Done, b: Done) -> bool:
    """Equal chunks (their repr, and their texts whole)."""
    return repr(a) == repr(b) and _texts(a) == _texts(b)


def _lend(slots: Slots) -> int | None:
    """A slot lent with nothing handed out."""
    return slots.lend(lambda slot: slot)[0]


def _take(slots: Slots, slot: int | None, sent: Any) -> Done:
    return slots.take(slot, lambda: sent)


def test_a_chunk_put_in_a_slot_comes_back_as_it_was_and_frees_the_slot() -> None:
    slots = Slots(1, size=1 << 20)
    try:
        slot = _lend(slots)
        assert slot == 0 and _lend(slots) is None, "one chunk at a time in one slot"
        sent = slots.put(slot, _done())
        assert isinstance(sent, int) and 0 < sent < 1 << 20
        assert _same(_take(slots, slot, sent), _done())
        assert _lend(slots) == 0, "taken back with its chunk"
    finally:
        slots.close()


def test_a_chunk_bigger_than_its_slot_crosses_as_bytes() -> None:
    """The worst input: a pickle that fills its slot and goes on; the slot holds a part of
    it, which is never read, and is free again after."""
    slots = Slots(1, size=4096)
    try:
        big = _done(persons=20, text=1000)
        slot = _lend(slots)
        sent = slots.put(slot, big)
        assert isinstance(sent, bytes)
        assert _same(_take(slots, slot, sent), big)
        again = _lend(slots)
        small = _done(persons=1, text=10)
        assert _same(_take(slots, again, slots.put(again, small)), small)
    finally:
        slots.close()


def test_with_no_slot_lent_a_chunk_crosses_as_bytes() -> None:
    slots = Slots(0)
    assert _lend(slots) is None
    sent = slots.put(None, _done())
    assert isinstance(sent, bytes) and _same(_take(slots, None, sent), _done())


_forked: Slots | None = None


def _put_forked(slot: int, persons: int) -> Any:
    assert _forked is not None
    return os.getpid(), _forked.put(slot, _done(persons))


def test_a_forked_workers_pickle_is_read_in_this_process() -> None:
    """The slots are shared with the processes forked after they were made: what a worker
    writes there is read here, one chunk after another in the same slot."""
    global _forked
    _forked = Slots(2, size=1 << 20)
    try:
        with ProcessPoolExecutor(1, mp_context=get_context("fork")) as pool:
            for persons in (30, 10, 40):
                slot = _lend(_forked)
                assert slot is not None
                pid, sent = pool.submit(_put_forked, slot, persons).result()
                assert pid != os.getpid() and isinstance(sent, int)
                assert _same(_take(_forked, slot, sent), _done(persons))
    finally:
        _forked.close()
        _forked = None


def test_a_pools_chunks_cross_the_pipe_as_lengths(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the pool's pipe carries back for a chunk is its pickle's length, not the pickle
    (a chunk of 1,000 persons is ~5 MB)."""
    carried: list[Any] = []
    result = pool_module._result

    def noted(ids: list[int], future: Any) -> Any:
        carried.append(got := result(ids, future))
        return got

    monkeypatch.setattr(pool_module, "_result", noted)
    monkeypatch.setattr(pool_module, "_work", _fake_work)
    monkeypatch.setattr(pool_module, "_start", _fake_start)
    pool = pool_module.EvaluationPool(None, None, 2)  # type: ignore[arg-type]
    monkeypatch.setattr(pool_module.EvaluationPool, "_settle",
                        lambda _self, done, routing: (done, routing))
    assert pool.start()
    with pool:
        chunks = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]
        back = [done for done, _routing in pool.merged(chunks, RoutingState.from_dict(None))]
    assert [done.person_ids for done in back] == chunks   # type: ignore[attr-defined]
    assert carried and all(type(sent) is int for sent in carried)


def _fake_work(index: int, person_ids: list[int], routing: RoutingState,
               slot: int | None = None) -> Any:
    """A worker's `_work` with the chunk made up: what it sends is the real one's."""
    assert pool_module._slots is not None
    pieces = {pid: Piece(NOW) for pid in person_ids}
    return pool_module._slots.put(slot, Done(person_ids, pieces))


def _fake_start(_job: Any, _parent: int, _store: Any, _board: Any, slots: Slots) -> None:
    pool_module._slots = slots


def test_slots_refused_by_the_system_leave_every_chunk_to_the_pipe(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A host whose overcommit limit refuses the address space: the workers still run,
    their chunks crossing as bytes."""
    def refused(*_args: Any) -> Any:
        raise OSError("Cannot allocate memory")

    monkeypatch.setattr(wire.mmap, "mmap", refused)
    slots = Slots.made(3)
    assert _lend(slots) is None
    sent = slots.put(None, _done())
    assert isinstance(sent, bytes) and _same(_take(slots, None, sent), _done())


def test_pages_the_system_will_not_take_back_stay_and_the_chunk_is_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A system that refuses the advice (an unknown one here): the chunk is read all the
    same, and the next one written over it."""
    monkeypatch.setattr(wire, "_FREE", -1)
    slots = Slots(1, size=1 << 20)
    try:
        for persons in (40, 5):
            slot = _lend(slots)
            assert _same(_take(slots, slot, slots.put(slot, _done(persons))), _done(persons))
    finally:
        slots.close()


@pytest.mark.parametrize("slot_bytes", [4096, 0], ids=["outgrown", "no slots"])
def test_chunks_that_cross_the_pipe_store_what_the_in_process_path_stores(
        urls: tuple[str, str], slot_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worst input for the slots: every chunk outgrows its slot (or there is none), and
    crosses the pipe; two rescores store what they store in process."""
    if slot_bytes:
        monkeypatch.setattr(wire, "SLOT_BYTES", slot_bytes)
    else:
        monkeypatch.setattr(Slots, "made", classmethod(lambda cls, _count: cls(0)))
    sent: list[Any] = []
    take = Slots.take

    def noted(self: Slots, slot: int | None, result: Any) -> Any:
        sent.append(got := result())
        return take(self, slot, lambda: got)

    monkeypatch.setattr(Slots, "take", noted)
    assert not _compare_with_in_process(urls, 2, monkeypatch)
    assert sent and all(type(got) is bytes for got in sent)


class _Broken(Exception):
    pass


def _raise(*_args: Any) -> Any:
    raise _Broken


def test_a_slot_lent_with_a_chunk_that_was_not_handed_out_is_free_again() -> None:
    """The pool refused the chunk (a worker died since the last one came back): its slot
    is no one's; kept lent, the pool would run out of slots and send all by the pipe."""
    slots = Slots(1, size=1 << 20)
    try:
        with pytest.raises(_Broken):
            slots.lend(_raise)
        assert _lend(slots) == 0
    finally:
        slots.close()


def test_a_slot_whose_chunk_failed_is_free_again_and_its_pages_given_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker raised (or died) instead of sending its chunk, maybe after writing a part
    of its pickle: the slot is free again and all its pages go back to the system."""
    given: list[int] = []
    monkeypatch.setattr(wire, "_give_back", lambda _space, used: given.append(used))
    slots = Slots(1, size=1 << 20)
    try:
        slot = _lend(slots)
        with pytest.raises(_Broken):
            slots.take(slot, _raise)
        assert given == [1 << 20]
        assert _lend(slots) == 0
        with pytest.raises(pickle.UnpicklingError):   # a chunk that cannot be read
            _take(slots, 0, 3)
        assert given == [1 << 20, 3] and _lend(slots) == 0
    finally:
        slots.close()
