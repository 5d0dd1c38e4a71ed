"""PushAlongside(finish=True): when evaluation ends, each system's thread sends its rest at
once (part batches too), instead of waiting for the other system's round to end before the
cycle's own push; when evaluation fails, nothing more is sent (as before)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from state.outbox import NewOutboxRow
from state.store import StateStore
from syncagent.pipeline.overlap import PushAlongside
from syncagent.pipeline.push import LIST_OPERATIONS
from syncagent.sandbox.server import RunningSandbox
from tests.connectors.conftest import hs_connector
from tests.fixtures.sandbox import SandboxFactory


def _updates(ids: list[int]) -> list[NewOutboxRow]:
    return [NewOutboxRow("hubspot", "contacts", "update", {"jobtitle": f"VP {i}"},
                         f"hubspot:contacts:{i}:update", remote_id=str(i), person_id=i)
            for i in ids]


def _setup(sandbox_factory: SandboxFactory, tmp_path: Path
           ) -> tuple[StateStore, list[int], RunningSandbox]:
    running = sandbox_factory(leads=200, faults={"hubspot_requests_per_10s": 10_000})
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    ids = sorted(r.id for r in running.ctx.hs.store("contacts").records.values()
                 if not r.archived)[:50]
    return store, ids, running


def test_a_failed_evaluation_sends_no_part_batch(sandbox_factory: SandboxFactory,
                                                 tmp_path: Path) -> None:
    store, ids, running = _setup(sandbox_factory, tmp_path)
    conn = hs_connector(running)
    with pytest.raises(RuntimeError), \
            PushAlongside({"hubspot": conn}, store, "agent", threading.Event(),
                          defer=LIST_OPERATIONS, finish=True):
        store.outbox.enqueue(_updates(ids))
        raise RuntimeError("evaluation failed")
    assert conn.calls.by_operation().get("batch_update_contacts", 0) == 0
    assert store.outbox.counts().get("pending") == 50


def test_the_rest_goes_from_the_thread_once_evaluation_ends(sandbox_factory: SandboxFactory,
                                                            tmp_path: Path) -> None:
    store, ids, running = _setup(sandbox_factory, tmp_path)
    conn = hs_connector(running)
    with PushAlongside({"hubspot": conn}, store, "agent", threading.Event(),
                       defer=LIST_OPERATIONS, finish=True) as early:
        store.outbox.enqueue(_updates(ids))    # half a batch: no round alongside sends it
    assert sum(early.result.written.values()) == 50
    assert conn.calls.by_operation()["batch_update_contacts"] == 1
    contacts = running.ctx.hs.store("contacts").records
    assert all(contacts[i].properties["jobtitle"] == f"VP {i}" for i in ids)
