"""The chunk writer: commits run in the order given, on a thread of their own; the first that
fails stops the rest and its error reaches the cycle; a cycle that fails still stores the
chunks it evaluated before the failure; a chunk waits for the commit before it to end."""

from __future__ import annotations

import contextvars
import threading

import pytest

from syncagent.pipeline.writer import ChunkWriter


class Boom(RuntimeError):
    pass


def test_a_failed_commit_skips_the_later_ones_and_its_error_reaches_the_caller() -> None:
    done: list[int] = []

    def fail() -> None:
        raise Boom("the state DB refused the chunk")

    with pytest.raises(Boom), ChunkWriter() as writer:
        writer.submit(lambda: done.append(1))
        writer.submit(fail)
        for n in range(2, 6):   # raises at a submit once the failure is seen, or at the end
            writer.submit(lambda n=n: done.append(n))
    assert done == [1]


def test_commits_run_in_order_on_the_writer_thread() -> None:
    seen: list[tuple[int, str]] = []
    with ChunkWriter() as writer:
        for n in range(50):
            writer.submit(lambda n=n: seen.append((n, threading.current_thread().name)))
    assert [n for n, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"chunk-writer"}


def test_a_failing_cycle_still_stores_the_chunks_it_submitted() -> None:
    release = threading.Event()
    done: list[int] = []

    def slow_commit() -> None:
        release.wait(5)
        done.append(2)

    with pytest.raises(Boom), ChunkWriter() as writer:
        writer.submit(lambda: done.append(1))
        writer.submit(slow_commit)
        release.set()
        raise Boom("evaluating the next chunk failed")
    assert done == [1, 2]


def test_a_chunk_is_handed_over_only_once_the_commit_before_it_has_ended() -> None:
    """Two chunks in memory at most, however fast the next ones are evaluated."""
    started, finish = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        started.set()
        finish.wait(5)
        order.append("first ended")

    def hand_over_second() -> None:
        writer.submit(lambda: order.append("second committed"))
        order.append("second handed over")

    with ChunkWriter() as writer:
        writer.submit(first)
        assert started.wait(5)
        submitter = threading.Thread(target=hand_over_second)
        submitter.start()
        submitter.join(0.2)
        assert submitter.is_alive() and order == []   # waits for the first commit
        finish.set()
        submitter.join(5)
    assert order[0] == "first ended"
    assert sorted(order[1:]) == ["second committed", "second handed over"]


def test_a_commit_runs_in_the_context_it_was_submitted_from() -> None:
    cycle: contextvars.ContextVar[str] = contextvars.ContextVar("cycle", default="none")
    seen: list[str] = []
    with ChunkWriter() as writer:
        cycle.set("run-7")
        writer.submit(lambda: seen.append(cycle.get()))
    assert seen == ["run-7"]
