"""The push rounds beside evaluation wait for a commit that queues rows, not for a timer: an
idle round costs the state DB nothing until rows come (or the slow poll's time), and rows a
chunk commit queues are written at once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from state.outbox import NewOutboxRow
from state.store import StateStore
from syncagent.pipeline import overlap
from syncagent.pipeline.overlap import PushAlongside
from syncagent.pipeline.push import LIST_OPERATIONS
from tests.connectors.conftest import hs_connector
from tests.fixtures.sandbox import SandboxFactory


def _updates(ids: list[int]) -> list[NewOutboxRow]:
    return [NewOutboxRow("hubspot", "contacts", "update", {"jobtitle": f"VP {i}"},
                         f"hubspot:contacts:{i}:update", remote_id=str(i), person_id=i)
            for i in ids]


def _counting_due_counts(store: StateStore) -> list[float]:
    """Each due-counts read of the outbox (what an idle round polls), by when it came."""
    calls: list[float] = []
    original = store.outbox.due_counts

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        return original(*args, **kwargs)

    store.outbox.due_counts = counted  # type: ignore[method-assign]
    return calls


def test_an_idle_round_reads_the_outbox_once_until_rows_come(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    calls = _counting_due_counts(store)
    conn: Any = object()   # no rows: no round ever reaches the connector
    started = time.monotonic()
    with PushAlongside({"hubspot": conn}, store, "agent", threading.Event(),
                       defer=LIST_OPERATIONS):
        time.sleep(2.0)
    ended = time.monotonic() - started
    assert len(calls) == 1   # a half-second poll made four or five
    assert ended < 2.0 + 1.0   # the block's end wakes the waiting thread: no 5 s wait


def test_a_stop_ends_an_idle_wait_promptly(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    stop = threading.Event()
    alongside = PushAlongside({"hubspot": object()}, store, "agent", stop)  # type: ignore[dict-item]
    with alongside:
        time.sleep(0.3)
        stop.set()
        threads = list(alongside._threads)
        for thread in threads:
            thread.join(timeout=overlap.STOP_CHECK_SECONDS + 1.0)
        assert not any(thread.is_alive() for thread in threads)


def test_rows_a_chunk_commit_queues_wake_the_idle_round_at_once(
        sandbox_factory: SandboxFactory, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overlap, "FALLBACK_POLL_SECONDS", 60.0)   # only the ring can wake it
    running = sandbox_factory(leads=150, faults={"hubspot_requests_per_10s": 10_000})
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    persons = store.persons.create([f"p{i}@example.org" for i in range(100)])
    ids = sorted(r.id for r in running.ctx.hs.store("contacts").records.values()
                 if not r.archived)[:100]
    calls = _counting_due_counts(store)
    conn = hs_connector(running)
    with PushAlongside({"hubspot": conn}, store, "agent", threading.Event(),
                       defer=LIST_OPERATIONS) as early:
        while not calls:
            time.sleep(0.05)
        time.sleep(0.3)   # the first round found nothing and waits
        now = datetime.now(UTC)
        store.commit_evaluation(_updates(ids), [], dict.fromkeys(persons), {}, now=now)
        deadline = time.monotonic() + 10.0
        while sum(early.result.written.values()) < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert sum(early.result.written.values()) == 100   # one whole batch, long before 60 s


def test_a_commit_that_queues_no_rows_rings_nothing(tmp_path: Path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    persons = store.persons.create(["a@example.org"])
    with store.outbox.doorbell.listening() as bell:
        store.commit_evaluation([], [], dict.fromkeys(persons), {})
        assert not bell.is_set()
        store.commit_evaluation(_updates([1]), [], dict.fromkeys(persons), {})
        assert bell.is_set()
