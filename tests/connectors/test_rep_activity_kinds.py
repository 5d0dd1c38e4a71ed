"""What reps log becomes activity (call_attempted, task_completed, call_connected); the
agent's own tasks, even once a rep closes them, never do: they exist because of the score."""

from __future__ import annotations

from datetime import timedelta

from connectors.base import ActivityRecord, Cursor, WriteItem
from tests.connectors.conftest import hs_connector, sf_connector
from tests.fixtures.sandbox import SandboxFactory


def test_salesforce_tasks_reps_log_become_kinds_and_the_agents_own_do_not(
        sandbox_factory: SandboxFactory) -> None:
    sandbox = sandbox_factory(leads=20)
    sf = sandbox.ctx.sf
    conn = sf_connector(sandbox)
    lead = next(r for r in sf.records("Lead") if not r.get("IsConverted"))["Id"]
    # The worst case: the agent's alert is named like a call, and a rep closes it.
    [agent_task] = conn.write("Task", "create", [WriteItem(
        fields={"Subject": "call-now: Ana Silva", "WhoId": lead, "Status": "Not Started"},
        key="alert:call-now:1")])
    assert agent_task.id is not None
    sf.update("Task", agent_task.id, {"Status": "Completed"})
    when = sandbox.ctx.clock.now() - timedelta(hours=2)
    sf.insert("Task", [
        {"WhoId": lead, "Subject": "Call", "TaskSubtype": "Call", "Type": "Call",
         "CallDisposition": "Left Voicemail", "Status": "Completed",
         "ActivityDate": when.date(), "CreatedDate": when},
        {"WhoId": lead, "Subject": "Call", "TaskSubtype": "Call", "Type": "Call",
         "CallDisposition": "Connected", "Status": "Completed",
         "ActivityDate": when.date(), "CreatedDate": when},
        {"WhoId": lead, "Subject": "Send the pricing sheet", "Status": "Completed",
         "ActivityDate": when.date(), "CreatedDate": when},
        {"WhoId": lead, "Subject": "Follow up next week", "Status": "Not Started",
         "ActivityDate": when.date(), "CreatedDate": when},
    ])
    cursors: dict[str, Cursor | None] = {"Task": None}
    pages = list(conn.read_many(cursors, cycle_start=sandbox.ctx.clock.now()))
    mine = sorted((r.details.get("subject"), r.kind) for p in pages for r in p.records
                  if isinstance(r, ActivityRecord) and r.person_ref == ("salesforce", "Lead", lead))
    assert ("Send the pricing sheet", "task_completed") in mine
    assert ("Call", "call_attempted") in mine and ("Call", "call_connected") in mine
    assert all(subject not in ("call-now: Ana Silva", "Follow up next week")
               for subject, _ in mine)


def test_hubspot_tasks_reps_complete_become_task_completed_and_the_agents_do_not(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=40)
    hs = running.ctx.hs
    contact = min(r.id for r in hs.store("contacts").records.values() if not r.archived)
    owner = next(iter(hs.owners))
    conn = hs_connector(running)
    [agent_task] = conn.write("tasks", "create", [WriteItem(
        fields={"hs_task_subject": "hot-lead-acted: Ana", "hs_task_body": "Visited pricing",
                "hs_timestamp": "2026-12-01T09:00:00.000Z", "hs_task_status": "NOT_STARTED",
                "hubspot_owner_id": str(owner)},
        key="alert:hot:1", associations={"contacts": str(contact)})])
    assert agent_task.id is not None
    hs.update("tasks", int(agent_task.id), {"hs_task_status": "COMPLETED"})
    for subject, status in (("Send the contract", "COMPLETED"), ("Chase", "NOT_STARTED")):
        hs.create("tasks", {"hs_task_subject": subject, "hs_task_status": status,
                            "hs_timestamp": "2026-12-01T08:00:00.000Z"},
                  associations={"contacts": {contact}})
    running.ctx.clock.advance(5)       # past the search index's lag
    pages = list(conn.read("tasks", None, cycle_start=running.ctx.clock.now()))
    mine = sorted((r.details.get("subject"), r.kind) for p in pages for r in p.records
                  if isinstance(r, ActivityRecord)
                  and r.person_ref == ("hubspot", "contacts", str(contact)))
    assert mine == [("Send the contract", "task_completed")]
