"""Pushing while evaluation still queues rows: whole batches only, every row written once, and
the rest left to the cycle's own push; list changes wait for the last push."""

from __future__ import annotations

import threading
from pathlib import Path

from state.outbox import NewOutboxRow
from state.store import StateStore
from syncagent.pipeline.overlap import PushAlongside
from syncagent.pipeline.push import LIST_OPERATIONS, push
from tests.connectors.conftest import hs_connector
from tests.fixtures.sandbox import SandboxFactory


def _updates(ids: list[int], tag: str) -> list[NewOutboxRow]:
    return [NewOutboxRow("hubspot", "contacts", "update", {"jobtitle": f"{tag} {i}"},
                         f"hubspot:contacts:{i}:update", remote_id=str(i), person_id=i)
            for i in ids]


def test_rows_queued_while_pushing_go_in_whole_batches_and_each_lands_once(
        sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    running = sandbox_factory(leads=400, faults={"hubspot_requests_per_10s": 10_000})
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    ids = sorted(r.id for r in running.ctx.hs.store("contacts").records.values()
                 if not r.archived)[:250]
    conn = hs_connector(running)
    stop = threading.Event()
    with PushAlongside({"hubspot": conn}, store, "agent", stop,
                       defer=LIST_OPERATIONS) as early:
        for start in range(0, 250, 50):      # chunks of 50 arrive, as evaluation queues them
            store.outbox.enqueue(_updates(ids[start:start + 50], "VP"))
        store.outbox.enqueue([NewOutboxRow("hubspot", "list:Newsletter", "list_add", {},
                                           f"hubspot:list:{ids[0]}", remote_id=str(ids[0]))])
        deadline = threading.Event()
        for _ in range(100):                 # until the whole batches are written
            if sum(early.result.written.values()) >= 200:
                break
            deadline.wait(0.1)
    alongside = conn.calls.by_operation().get("batch_update_contacts", 0)
    assert sum(early.result.written.values()) == 200 and alongside == 2
    assert early.result.list_changes == {}
    rest = push({"hubspot": conn}, store, "agent", stop)
    assert sum(rest.written.values()) == 50
    assert conn.calls.by_operation()["batch_update_contacts"] == 3
    assert sum(rest.list_changes.values()) == 1 and not rest.failures   # deferred to here
    contacts = running.ctx.hs.store("contacts").records
    assert all(contacts[i].properties["jobtitle"] == f"VP {i}" for i in ids)


def test_a_whole_batch_push_holds_back_part_batches_of_clears_and_plain_updates(
        tmp_path: Path) -> None:
    from syncagent.pipeline.push import _whole

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    rows = _updates(list(range(1, 251)), "VP")
    rows = [NewOutboxRow(r.system, r.object, r.operation,
                         {**r.fields, "__clear_first": ["lifecyclestage"]}
                         if (r.person_id or 0) % 10 == 0 else r.fields,
                         r.idempotency_key, remote_id=r.remote_id, person_id=r.person_id)
            for r in rows]
    store.outbox.enqueue(rows)
    claimed = store.outbox.claim("agent", 1000, system="hubspot", object_name="contacts",
                                 operation="update")
    kept = _whole(store, claimed, 100)
    assert len(kept) == 200 and not any(i.fields.get("__clear_first") for i in kept)
    assert store.outbox.due_counts() == {("hubspot", "contacts", "update"): 50}
    again = store.outbox.claim("agent", 1000, system="hubspot", object_name="contacts",
                               operation="update")
    assert sum(1 for i in again if i.fields.get("__clear_first")) == 25
    assert all(i.attempts == 1 for i in again)     # a hold-back is not an attempt
