"""A HubSpot task row of the outbox, as the hand-off step queues it, through push and the real
connector into the sandbox: associated with its contact, the key on the task, and a row sent
again after a crash (its claim orphaned) finds the task instead of making a second one."""

from __future__ import annotations

import threading
from pathlib import Path

from connectors.hubspot.tasks import key_of
from state.outbox import NewOutboxRow
from state.store import StateStore
from syncagent.pipeline.push import push
from tests.connectors.conftest import hs_connector
from tests.fixtures.sandbox import SandboxFactory


def test_a_queued_hubspot_task_lands_once_even_when_its_row_is_sent_again(
        sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    running = sandbox_factory(leads=40, faults={"hubspot_search_delay_seconds": 30})
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    store.upgrade()
    contact = min(r.id for r in running.ctx.hs.store("contacts").records.values()
                  if not r.archived)
    owner = next(iter(running.ctx.hs.owners))
    key = f"alert:{contact}:pricing:1"
    fields = {"hs_task_subject": "Hot lead visited /pricing", "hs_task_body": "Grade A",
              "hs_timestamp": "2026-12-01T09:00:00.000Z", "hs_task_priority": "HIGH",
              "hs_task_status": "NOT_STARTED", "hubspot_owner_id": str(owner),
              "__key": key, "__associate": {"contacts": str(contact)}}
    row = NewOutboxRow("hubspot", "tasks", "create", fields, f"hubspot:task:{key}",
                       person_id=1)
    store.outbox.enqueue([row])
    first = push({"hubspot": hs_connector(running)}, store, "agent-1", threading.Event())
    assert first.created["hubspot"] == 1 and not first.failures
    # the same task again, as after a crash between the send and the bookkeeping: a process
    # claimed the row, its create landed (the task above), and it died; its claim expires
    store.outbox.enqueue([NewOutboxRow("hubspot", "tasks", "create", dict(fields),
                                       f"hubspot:task:{key}:again", person_id=1)])
    [crashed] = store.outbox.claim("agent-dead", 10, system="hubspot", object_name="tasks",
                                   operation="create", claim_seconds=0)
    assert crashed.never_sent      # its first claim: the look-up comes from the re-claim
    again = push({"hubspot": hs_connector(running)}, store, "agent-2", threading.Event())
    assert again.created["hubspot"] == 0 and again.written["hubspot"] == 1
    tasks = [t for t in running.ctx.hs.store("tasks").records.values()
             if key_of(t.properties.get("hs_task_body")) == key]
    assert len(tasks) == 1
    assert tasks[0].associations["contacts"] == {contact}
    assert tasks[0].properties["hubspot_owner_id"] == str(owner)
    assert "__associate" not in tasks[0].properties and "__key" not in tasks[0].properties
    assert running.stats()["tasks_created"]["hubspot"] == 1
