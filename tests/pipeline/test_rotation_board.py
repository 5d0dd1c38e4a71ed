"""The rotation board (pipeline/workers.py): the worker that evaluated a chunk posts the
rotation it left, and the next chunk's first reader of the rotation reads it in place of the
guess it was handed. Whatever goes wrong (a failed chunk, a rotation too big, a wait that
ends) leaves the guess, which the main process settles: never a wait without end."""

from __future__ import annotations

import os
import time
from datetime import datetime
from multiprocessing import get_context
from types import SimpleNamespace
from typing import Any

import pytest

from syncagent.engine import RoutingState
from syncagent.pipeline import decide
from syncagent.pipeline import workers as pool_module
from syncagent.pipeline.workers import Read, RotationBoard, _Incoming, watching

GUESS = RoutingState("2026-11-30", {"0058c0000000001AAA": 1}, {})
TRUE = RoutingState("2026-11-30", {"0058c0000000001AAA": 2, "ünïcode\x00user": 10**30},
                    {"pool:émea": {"0058c0000000001AAA": -3, "ünïcode\x00user": 3}})


class _Person:
    def __init__(self, pid: int) -> None:
        self.person_id = str(pid)


def _engine(readers: set[int], seen: dict[int, RoutingState | None]) -> Any:
    """A stand-in for the engine's evaluate: persons in ``readers`` read the rotation and
    assign one lead to "u"; the others never look at it."""

    def evaluate(person: _Person, _rules: Any, _now: Any, state: RoutingState,
                 _users: Any) -> tuple[str, RoutingState]:
        pid = int(person.person_id)
        if pid not in readers:
            seen[pid] = None
            return "kept", state
        seen[pid] = RoutingState(state.day, dict(state.assigned), state.weights)
        counts = {**state.assigned, "u": state.assigned.get("u", 0) + 1}
        return "routed", RoutingState(state.day, counts, state.weights)

    return evaluate


def _judge_chunk(monkeypatch: pytest.MonkeyPatch, incoming: _Incoming | None, pids: list[int],
                 readers: set[int]) -> tuple[list[Read], dict[int, RoutingState | None],
                                             RoutingState]:
    seen: dict[int, RoutingState | None] = {}
    monkeypatch.setattr(pool_module, "evaluate", _engine(readers, seen))
    reads: list[Read] = []
    judge = watching(reads, incoming)
    state = GUESS
    for pid in pids:
        _decision, state = judge(_Person(pid), None, None, state, None)  # type: ignore[arg-type]
    return reads, seen, state


def test_a_posted_rotation_is_read_back_whole() -> None:
    board = RotationBoard()
    board.post(4, TRUE)
    assert board.wait(4) == TRUE


@pytest.mark.parametrize("posted", [None, "too big", "another chunk's"])
def test_no_rotation_to_read_leaves_the_guess(posted: str | None) -> None:
    board = RotationBoard(size=64, timeout=5)
    started = time.monotonic()
    if posted == "too big":
        board.post(4, TRUE)
    elif posted == "another chunk's":
        board.post(5, GUESS)
    else:   # the chunk failed
        board.post(4, None)
    assert board.wait(4) is None
    assert time.monotonic() - started < 4, "nothing was waited for in vain"


def test_a_failed_chunk_is_not_hidden_by_the_chunk_before_posting_after_it() -> None:
    """A chunk that fails at once posts before the chunk before it has ended: the next
    chunk's worker still learns there is nothing to wait for."""
    board = RotationBoard(timeout=5)
    board.post(5, None)
    board.post(4, TRUE)
    started = time.monotonic()
    assert board.wait(5) is None
    assert time.monotonic() - started < 4


def test_a_wait_ends_without_the_rotation_when_it_never_comes() -> None:
    board = RotationBoard(timeout=0.05)
    assert board.wait(0) is None


def test_a_rotation_posted_by_a_forked_worker_is_read_here() -> None:
    board = RotationBoard(timeout=30)
    child = get_context("fork").Process(target=_post_later, args=(board,))
    child.start()
    try:
        assert board.wait(7) == TRUE
    finally:
        child.join()


def _post_later(board: RotationBoard) -> None:
    time.sleep(0.2)
    board.post(6, GUESS)   # not the one waited for: the wait goes on
    board.post(7, TRUE)
    os._exit(0)


def test_the_first_reader_reads_the_true_rotation_and_no_one_before_it_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    board = RotationBoard(timeout=30)
    asked: list[int] = []
    real_wait = board.wait

    def noted(index: int) -> RoutingState | None:
        asked.append(index)
        board.post(index, TRUE)   # as the worker of the chunk before would have, by now
        return real_wait(index)

    monkeypatch.setattr(board, "wait", noted)
    reads, seen, after = _judge_chunk(monkeypatch, _Incoming(board, 3, GUESS), [1, 2, 3, 4],
                                      readers={2, 4})
    assert asked == [2], "asked once, for the chunk before, at the first reader"
    assert seen[1] is None and seen[2] == TRUE, "the engine never saw the guess"
    assert seen[4] == RoutingState(TRUE.day, {**TRUE.assigned, "u": 1}, TRUE.weights)
    assert [read.person_id for read in reads] == [2, 4]
    assert reads[0].before == TRUE and reads[1].before == reads[0].after
    assert after == RoutingState(TRUE.day, {**TRUE.assigned, "u": 2}, TRUE.weights)


def test_without_the_true_rotation_readers_read_the_guess_and_are_settled_later(
        monkeypatch: pytest.MonkeyPatch) -> None:
    board = RotationBoard(timeout=0.01)
    reads, seen, _after = _judge_chunk(monkeypatch, _Incoming(board, 3, GUESS), [1, 2],
                                       readers={1, 2})
    assert seen[1] == GUESS and reads[0].before == GUESS


def test_a_reader_that_leaves_the_rotation_as_it_was_does_not_make_the_next_one_a_reader(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The persons who never read the rotation share one probe of it: one who reads it and
    hands back the very rotation it was handed (routed to a queue) ends that sharing."""
    seen: dict[int, RoutingState | None] = {}

    def evaluate(person: _Person, _rules: Any, _now: Any, state: RoutingState,
                 _users: Any) -> tuple[str, RoutingState]:
        if person.person_id in ("2", "4"):   # read it, and hand it back as it was
            seen[int(person.person_id)] = RoutingState(state.day, state.assigned, state.weights)
        return "kept", state

    monkeypatch.setattr(pool_module, "evaluate", evaluate)
    reads: list[Read] = []
    judge = watching(reads)
    state = GUESS
    for pid in [1, 2, 3, 4, 5]:
        _decision, state = judge(_Person(pid), None, None, state, None)  # type: ignore[arg-type]
        assert state == GUESS
    assert [read.person_id for read in reads] == [2, 4]
    assert all(read.before == read.after == GUESS for read in reads)
    assert seen == {2: GUESS, 4: GUESS}


def test_chunk_zero_is_handed_the_true_rotation_and_never_waits() -> None:
    board = RotationBoard(timeout=30)
    started = time.monotonic()
    assert _Incoming(board, 0, TRUE).true() == TRUE
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("readers", [set(), {2}], ids=["read by nobody", "read"])
def test_a_chunk_posts_the_rotation_it_left(monkeypatch: pytest.MonkeyPatch,
                                            readers: set[int]) -> None:
    """Read by nobody, the rotation leaves the chunk as it came in: the true one posted for
    the chunk before, not the guess the chunk was handed."""
    board = _worker_board(monkeypatch, readers)
    board.post(2, TRUE)
    with pytest.raises(_Planned):
        pool_module._work(3, [1, 2, 3], GUESS)
    expected = RoutingState(TRUE.day, {**TRUE.assigned, "u": 1}, TRUE.weights) \
        if readers else TRUE
    assert board.wait(3) == expected


def test_a_chunk_that_fails_posts_no_rotation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next chunk's worker does not wait for it in vain: it goes on with its guess."""
    board = _worker_board(monkeypatch, {1})

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("the database went away")

    monkeypatch.setattr(decide, "_evaluate_chunk", failing)
    board.post(2, TRUE)
    with pytest.raises(OSError):
        pool_module._work(3, [1, 2, 3], GUESS)
    started = time.monotonic()
    assert board.wait(3) is None
    assert time.monotonic() - started < 5


class _Planned(Exception):
    """Raised where planning would start: the chunk's evaluation is over."""


def _worker_board(monkeypatch: pytest.MonkeyPatch, readers: set[int]) -> RotationBoard:
    """This process as a worker whose chunks' persons are judged by `_engine`."""
    board = RotationBoard(timeout=30)
    nothing: Any = None   # what planning would read: planning is never reached
    job = pool_module.Job("sqlite://", SimpleNamespace(source="mappings"),  # type: ignore[arg-type]
                          nothing, nothing, nothing, datetime(2026, 11, 30))
    monkeypatch.setattr(pool_module, "_worker", (job, None, board))
    monkeypatch.setattr(pool_module, "evaluate", _engine(readers, {}))

    def evaluate_chunk(_store: Any, _rules: Any, ids: list[int], _world: Any, _now: Any,
                       routing: RoutingState, judge: Any) -> Any:
        for pid in ids:
            _decision, routing = judge(_Person(pid), None, None, routing, None)
        return decide.Evaluated([], [], {}, routing)

    def planned(*_args: Any, **_kwargs: Any) -> Any:
        raise _Planned

    monkeypatch.setattr(decide, "_evaluate_chunk", evaluate_chunk)
    monkeypatch.setattr(pool_module, "pieces_of", planned)
    return board
