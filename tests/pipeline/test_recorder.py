"""Push results recorded off the send path (pipeline/recorder.py), on SQLite and Postgres.

Worst inputs first: a recording that fails, a recorder that stalls (the sender must stop a
few batches ahead, with every sent row still in flight), a fault in the last step of a
recording (nothing of it may stay); then what a push promises when it returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import select

from connectors.base import WriteItem, WriteRef, WriteResult
from state import models as m
from state.outbox import NewOutboxRow
from state.persons import PersonStore
from state.recording import RecordedBatch
from state.store import StateStore
from syncagent.pipeline import recorder
from syncagent.pipeline.push import push
from tests.state import conftest as state_fixtures

store = state_fixtures.store   # a migrated, empty state DB: SQLite, then Postgres

BATCH = 10
SYSTEM = "hubspot"


class Injected(RuntimeError):
    """The fault these tests inject."""


class FakeCRM:
    """Answers every record ok; a create gets a new id. Counts the batches sent."""

    system = SYSTEM
    max_batch = BATCH

    def __init__(self) -> None:
        self.sent = 0

    def longest_call(self) -> float:
        return 1.0

    def write(self, object_name: str, operation: str,
              items: Sequence[WriteItem]) -> list[WriteResult]:
        self.sent += 1
        return [WriteResult(WriteRef(object_name, item.id, item.key), "ok",
                            id=item.id or f"new-{item.key}",
                            created=None if item.id else True)
                for item in items]


def _updates(store: StateStore, n: int) -> list[int]:
    persons = store.persons.create([f"u{i}@example.org" for i in range(n)])
    store.outbox.enqueue([NewOutboxRow(SYSTEM, "contacts", "update", {"score": str(i)},
                                       f"u{i}", remote_id=f"r{i}", person_id=pid)
                          for i, pid in enumerate(persons)])
    return persons


def _creates(store: StateStore, n: int) -> list[int]:
    persons = store.persons.create([f"c{i}@example.org" for i in range(n)])
    store.outbox.enqueue([NewOutboxRow(SYSTEM, "contacts", "create",
                                       {"email": f"c{i}@example.org", "__key": f"c{i}",
                                        "__person_record": True},
                                       f"c{i}", person_id=pid)
                          for i, pid in enumerate(persons)])
    return persons


def _statuses(store: StateStore) -> dict[str, int]:
    return store.outbox.counts()


def _wrap_commits(monkeypatch: pytest.MonkeyPatch, store: StateStore,
                  before: Callable[[Sequence[RecordedBatch]], object]) -> list[int]:
    """Run ``before`` ahead of each recording transaction; returns its batch counts."""
    real = store.commit_push_results
    calls: list[int] = []

    def commit(batches: Sequence[RecordedBatch], now: Any = None) -> None:
        calls.append(len(batches))
        before(batches)
        real(batches, now)

    monkeypatch.setattr(store, "commit_push_results", commit)
    return calls


def test_a_failed_recording_fails_the_push_and_leaves_no_row_in_flight(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _updates(store, 5 * BATCH)
    calls: list[int] = []

    def fail_second(batches: Sequence[RecordedBatch]) -> None:
        if len(calls) == 2:
            raise Injected("the state DB refused")

    calls = _wrap_commits(monkeypatch, store, fail_second)
    result = push({SYSTEM: FakeCRM()}, store, "agent", threading.Event())  # type: ignore[dict-item]

    assert [f["error"] for f in result.failures] == ["Injected"], result.failures
    counts = _statuses(store)
    assert counts.get("in_flight", 0) == 0, counts
    assert counts.get("done", 0) + counts.get("pending", 0) == 5 * BATCH, counts
    # the failed recording's rows wait for a retry, marked as sent before
    with store.sessions.read() as session:
        codes = set(session.scalars(select(m.OutboxRow.error_code)
                                    .where(m.OutboxRow.status == "pending")))
    assert codes == {"Injected"}
    assert counts.get("pending", 0) >= 1


def test_a_stalled_recorder_holds_the_sender_a_few_batches_ahead_its_rows_in_flight(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _updates(store, 20 * BATCH)
    gate = threading.Event()
    _wrap_commits(monkeypatch, store, lambda _batches: gate.wait(30))
    crm = FakeCRM()
    pushing = threading.Thread(target=push, args=({SYSTEM: crm}, store, "agent",
                                                  threading.Event()))
    pushing.start()
    try:
        sent = _settled_count(lambda: crm.sent)
        # one or a few batches in the stalled transaction, AHEAD queued, one waiting to go in
        assert recorder.AHEAD + 2 <= sent <= recorder.AHEAD + 1 + recorder.MERGE_MOST, sent
        # no row is completed before its result is recorded: a crash now leaves every sent
        # row claimed by this holder, for the orphan release or the claim's expiry
        held = store.outbox.claim_holders()
        assert set(held) == {"agent"}
        assert _statuses(store).get("done", 0) == 0
        assert not store.mirror.records(SYSTEM, "contacts")
    finally:
        gate.set()
        pushing.join(30)
    assert not pushing.is_alive()
    assert _statuses(store) == {"done": 20 * BATCH}


def _settled_count(read: Callable[[], int], quiet: float = 0.5, most: float = 10.0) -> int:
    """The value once it has not changed for ``quiet`` seconds."""
    deadline = time.monotonic() + most
    last, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    return last


def test_a_fault_in_the_last_step_of_a_recording_leaves_nothing_of_it(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Links are the last step: the outbox rows and mirror values of the same transaction
    must not stay behind when they fail."""
    persons = _creates(store, BATCH)

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise Injected("links refused")

    monkeypatch.setattr(PersonStore, "link", refuse)
    result = push({SYSTEM: FakeCRM()}, store, "agent", threading.Event())  # type: ignore[dict-item]

    assert [f["error"] for f in result.failures] == ["Injected"]
    assert _statuses(store) == {"pending": BATCH}
    assert not store.mirror.records(SYSTEM, "contacts")
    assert not store.persons.refs_of(persons)


def test_a_push_returns_once_all_it_sent_is_recorded_creates_linked(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    persons = _creates(store, 3 * BATCH)
    _updates(store, 3 * BATCH)
    _wrap_commits(monkeypatch, store, lambda _batches: time.sleep(0.05))   # a slow DB

    result = push({SYSTEM: FakeCRM()}, store, "agent", threading.Event())  # type: ignore[dict-item]

    assert not result.failures
    assert result.created[SYSTEM] == 3 * BATCH and result.written[SYSTEM] == 3 * BATCH
    assert _statuses(store) == {"done": 6 * BATCH}
    links = store.persons.refs_of(persons)
    assert {pid: refs[0][2] for pid, refs in links.items()} == {
        pid: f"new-c{i}" for i, pid in enumerate(persons)}
    assert len(store.mirror.records(SYSTEM, "contacts")) == 6 * BATCH


def test_batches_waiting_for_the_recorder_are_recorded_together(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _updates(store, 12 * BATCH)
    calls = _wrap_commits(monkeypatch, store, lambda _batches: time.sleep(0.1))

    push({SYSTEM: FakeCRM()}, store, "agent", threading.Event())  # type: ignore[dict-item]

    assert sum(calls) == 12
    assert max(calls) <= recorder.MERGE_MOST
    assert len(calls) < 12, calls   # the sender got ahead: fewer transactions than batches
    assert _statuses(store) == {"done": 12 * BATCH}
