"""Pushing while evaluation still queues rows: whole batches only, every row written once, and
the rest left to the cycle's own push; list changes wait for the last push."""

from __future__ import annotations

import threading
from pathlib import Path

from state.outbox import NewOutboxRow
from state.persons import set_evaluated
from state.store import StateStore
from syncagent.pipeline.overlap import PushAlongside
from syncagent.pipeline.push import LIST_OPERATIONS, push
from tests.connectors.conftest import hs_connector, sf_connector
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


def test_records_created_alongside_are_read_back_at_once_and_their_persons_marked_dirty(
        sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    running = sandbox_factory(leads=50, faults={"hubspot_requests_per_10s": 10_000})
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    emails = [f"new{i}@example.org" for i in range(150)]
    persons = store.persons.create(emails)
    with store.sessions.write() as session:   # evaluated: only the read-back marks them again
        set_evaluated(session, dict.fromkeys(persons))
    conn = hs_connector(running)
    creates = [NewOutboxRow("hubspot", "contacts", "upsert",
                            {"email": email, "jobtitle": "VP", "__key": email,
                             "__person_record": True},
                            f"hubspot:contacts:create:person:{pid}", person_id=pid)
               for email, pid in zip(emails, persons, strict=True)]
    stop = threading.Event()
    with PushAlongside({"hubspot": conn}, store, "agent", stop,
                       defer=LIST_OPERATIONS) as early:
        store.outbox.enqueue(creates)
        for _ in range(100):                 # until the whole batch is read back
            if early.settled:
                break
            threading.Event().wait(0.1)
    assert sum(early.result.created.values()) == 100       # one whole batch; 50 wait
    assert len(early.settled) == 100 and set(early.settled) == set(early.result.created_refs)
    assert conn.calls.by_operation().get("batch_read_contacts") == 1
    mirrored = {r.remote_id: r for r in store.mirror.records("hubspot", "contacts")}
    for _system, _object, rid in early.settled:
        # what HubSpot filled in, not only what was sent
        assert mirrored[rid].modstamp is not None and mirrored[rid].fields.get("createdate")
    assert set(store.persons.to_evaluate(running.ctx.clock.now())) == set(
        early.result.created_persons)


def test_a_slow_salesforce_round_never_holds_hubspot_rounds_back(
        sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    running = sandbox_factory(leads=1100, faults={"hubspot_requests_per_10s": 10_000,
                                                  "salesforce": {"latency_ms": 4000}})
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    ids = sorted(r.id for r in running.ctx.hs.store("contacts").records.values()
                 if not r.archived)[:300]
    hs, sf = hs_connector(running), sf_connector(running)
    # a push while rows are still queued sends Salesforce only whole Composite calls
    whole_call = sf.max_batch * sf.pack_size
    leads = [r["Id"] for r in running.ctx.sf.records("Lead")][:whole_call]
    sf.preflight()   # log in now: the login is slow too
    store.outbox.enqueue([NewOutboxRow("salesforce", "Lead", "update", {"Title": "VP"},
                                       f"salesforce:Lead:{lead}:update", remote_id=lead)
                          for lead in leads])
    stop = threading.Event()
    with PushAlongside({"salesforce": sf, "hubspot": hs}, store, "agent", stop,
                       defer=LIST_OPERATIONS) as early:
        threading.Event().wait(1.0)           # Salesforce's first round is in flight now
        for start in range(0, 300, 100):      # HubSpot rows keep coming meanwhile
            store.outbox.enqueue(_updates(ids[start:start + 100], "VP"))
            threading.Event().wait(0.6)
        hubspot_written_while_salesforce_waits = early.result.written["hubspot"]
    assert hubspot_written_while_salesforce_waits >= 200
    assert early.result.written["salesforce"] == whole_call
