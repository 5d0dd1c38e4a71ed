"""Task creates, exactly once: Salesforce upserts on Idempotency_Key__c in calls of 200;
HubSpot creates in batches of 100, associated with the contact, looked up by the key on the
task before any (re)send, so a create whose answer was lost never makes a second task."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses

from connectors.base import WriteItem
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.tasks import KEY_LINE, key_of, with_key_line
from syncagent.sandbox.server import RunningSandbox
from tests.connectors.conftest import hs_connector
from tests.connectors.test_salesforce_unit import DATA, _connector, _soap_login
from tests.fixtures.sandbox import SandboxFactory

UPSERT = f"{DATA}/composite/sobjects/Task/Idempotency_Key__c"


# --- Salesforce: upserts by key, 200 a call ---------------------------------------------------

def test_a_retried_task_chunk_upserts_the_same_keys_and_makes_nothing_twice() -> None:
    """The worst case first: the first Composite call of the collections lands but its answer
    is lost (a 503); the retry sends the same keys to the upsert endpoint, which finds the
    tasks."""
    conn = _connector()
    items = [WriteItem(fields={"Subject": f"Reminder {n}", "WhoId": f"00Q{n:012d}",
                               "OwnerId": "005000000000001"}, key=f"salesforce:task:sla:{n}")
             for n in range(450)]
    made: dict[str, str] = {}
    calls: list[list[list[str]]] = []

    def collection(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for key in [r["Idempotency_Key__c"] for r in records]:
            created = key not in made
            made.setdefault(key, f"00T{len(made):012d}")
            out.append({"id": made[key], "success": True, "created": created, "errors": []})
        return out

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        subs = json.loads(request.body)["compositeRequest"]
        assert all(sub["url"].endswith(UPSERT.split("/v59.0")[1]) for sub in subs)
        calls.append([[r["Idempotency_Key__c"] for r in sub["body"]["records"]]
                      for sub in subs])
        answers = [{"referenceId": sub["referenceId"], "httpStatusCode": 200,
                    "httpHeaders": {}, "body": collection(sub["body"]["records"])}
                   for sub in subs]
        if len(calls) == 1:       # landed, but the answer never arrived
            return 503, {}, json.dumps([{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}])
        return 200, {}, json.dumps({"compositeResponse": answers})

    with responses.RequestsMock() as rsps:
        _soap_login(rsps)
        rsps.add_callback(responses.POST, f"{DATA}/composite", callback=reply)
        results = conn.write("Task", "create", items)
    assert [[len(keys) for keys in call] for call in calls] == [[200, 200, 50]] * 2
    assert calls[0] == calls[1]                      # the same keys again
    assert len(made) == 450
    assert all(r.ok for r in results)
    assert [r.ref.key for r in results] == [i.key for i in items]
    assert [r.created for r in results] == [False] * 450      # found, not made again


def test_salesforce_task_upserts_in_the_sandbox_make_one_task_per_key(
        sandbox_factory: SandboxFactory) -> None:
    from tests.connectors.conftest import sf_connector

    running = sandbox_factory(leads=60)
    leads = [r for r in running.ctx.sf.records("Lead") if not r.get("IsConverted")
             and str(r.get("OwnerId")).startswith("005")][:3]
    owner = next(u["Id"] for u in running.ctx.sf.records("User")
                 if u.get("IsActive") and u.get("ManagerId"))
    items = [WriteItem(fields={"Subject": "Reminder", "WhoId": lead["Id"], "OwnerId": owner,
                               "Priority": "High", "Status": "Not Started",
                               "ActivityDate": "2026-12-01"},
                       key=f"salesforce:task:sla:{n}") for n, lead in enumerate(leads)]
    items.append(WriteItem(fields={"Subject": "For a queue", "WhoId": leads[0]["Id"],
                                   "OwnerId": "00G000000000001AAA"}, key="salesforce:task:q"))
    conn = sf_connector(running)
    first, again = conn.write("Task", "create", items), conn.write("Task", "create", items)
    assert [r.status for r in first] == ["ok", "ok", "ok", "rejected"]
    assert first[3].code == "FIELD_INTEGRITY_EXCEPTION"
    assert [r.id for r in again[:3]] == [r.id for r in first[:3]]
    assert [r.created for r in again[:3]] == [False] * 3
    keyed = [t for t in running.ctx.sf.records("Task") if t.get("Idempotency_Key__c")]
    assert sorted(t["Idempotency_Key__c"] for t in keyed) == [i.key for i in items[:3]]
    assert running.stats()["tasks_created"]["salesforce"] == 3


# --- HubSpot: batches of 100, the key on the task, looked up before sending -----------------

def test_the_key_line_is_added_once_and_read_back() -> None:
    body = with_key_line("Visited /pricing\nGrade A", "hubspot:task:k1")
    assert body.endswith("\n\n" + KEY_LINE + "hubspot:task:k1")
    assert with_key_line(body, "hubspot:task:k1") == body
    assert key_of(body) == "hubspot:task:k1"
    assert key_of("no key here") is None and key_of(None) is None


def _contacts(running: RunningSandbox, n: int) -> list[int]:
    return sorted(r.id for r in running.ctx.hs.store("contacts").records.values()
                  if not r.archived)[:n]


def _tasks(running: RunningSandbox, contacts: list[int], owner: int,
           tag: str = "t") -> list[WriteItem]:
    return [WriteItem(fields={"hs_task_subject": f"Hot lead {c}", "hs_task_body": "Visited",
                              "hs_timestamp": "2026-12-01T09:00:00.000Z",
                              "hs_task_priority": "HIGH", "hs_task_status": "NOT_STARTED",
                              "hubspot_owner_id": str(owner)},
                      key=f"hubspot:task:{tag}:{c}", associations={"contacts": str(c)})
            for c in contacts]


def _agent_tasks(running: RunningSandbox) -> dict[str, list[int]]:
    """Key -> the task ids carrying it, with the contacts each is associated with."""
    out: dict[str, list[int]] = {}
    for record in running.ctx.hs.store("tasks").records.values():
        key = key_of(record.properties.get("hs_task_body"))
        if key is not None and not record.archived:
            out.setdefault(key, []).append(record.id)
    return out


def test_a_create_that_lands_but_times_out_gives_exactly_one_task(
        sandbox_factory: SandboxFactory) -> None:
    """The worst case: the sandbox applies requests and then withholds the answer (a hang
    past the client's timeout). Every key must end as exactly one task, and the connector
    must have met the case (found a task it had no answer for)."""
    running = sandbox_factory(leads=40, faults={
        "seed": 3, "hubspot": {"rate_hang": 0.35, "hang_seconds": 1.5},
        "hubspot_search_delay_seconds": 30})
    owner = next(iter(running.ctx.hs.owners))
    contacts = _contacts(running, 12)
    conn: HubSpotConnector = hs_connector(running, timeout_seconds=0.5)
    items = [item for n in range(0, 12, 4) for item in _tasks(running, contacts[n:n + 4], owner)]
    results = []
    for i in range(0, len(items), 4):     # several calls, so several draws of the fault
        results += conn.write("tasks", "create", items[i:i + 4])
    hangs = sum(f["count"] for f in running.stats()["faults_injected"] if f["fault"] == "hang")
    assert hangs > 0 and conn.tasks.found_existing > 0
    landed = _agent_tasks(running)
    assert sorted(landed) == sorted(i.key for i in items if i.key)
    assert all(len(ids) == 1 for ids in landed.values())
    for result in results:
        assert result.status in ("ok", "retryable")
    ok = {r.ref.key: r.id for r in results if r.ok}
    assert all(landed[key] == [int(task_id)] for key, task_id in ok.items() if task_id)


def test_a_resend_after_a_crash_finds_the_tasks_and_creates_none(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=40, faults={"hubspot_search_delay_seconds": 30})
    owner = next(iter(running.ctx.hs.owners))
    items = _tasks(running, _contacts(running, 5), owner)
    first = hs_connector(running).write("tasks", "create", items)
    before = running.stats()
    again = hs_connector(running).write("tasks", "create", items)   # a new process
    assert [r.created for r in again] == [False] * 5
    assert [r.id for r in again] == [r.id for r in first]
    assert running.stats()["task_calls"]["hubspot"] == before["task_calls"]["hubspot"]
    assert all(len(ids) == 1 for ids in _agent_tasks(running).values())
    contact, task_id = items[0].associations["contacts"], first[0].id
    assert int(contact) in running.ctx.hs.store("tasks").records[int(task_id or 0)] \
        .associations["contacts"]


def test_150_tasks_go_in_two_create_calls_and_a_missing_contact_is_rejected_alone(
        sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=300, faults={"hubspot_requests_per_10s": 10_000})
    owner = next(iter(running.ctx.hs.owners))
    contacts = _contacts(running, 150)
    items = _tasks(running, contacts, owner)
    items[40] = _tasks(running, [99_999_999], owner, tag="gone")[0]
    results = hs_connector(running).write("tasks", "create", items)
    assert [n for n, r in enumerate(results) if not r.ok] == [40]
    assert results[40].status == "rejected"
    stats = running.stats()
    assert stats["task_calls"]["hubspot"] == 2
    assert stats["tasks_created"]["hubspot"] == 149
    creates = [c for c in stats["calls"] if c["path"].endswith("tasks/batch/create")]
    assert sum(c["count"] for c in creates) == 2


def test_tasks_are_found_by_contact_through_search(sandbox_factory: SandboxFactory) -> None:
    running = sandbox_factory(leads=40, faults={"hubspot_search_delay_seconds": 0})
    owner = next(iter(running.ctx.hs.owners))
    contact = _contacts(running, 1)[0]
    [made] = hs_connector(running).write("tasks", "create", _tasks(running, [contact], owner))
    found = requests.post(f"{running.url}/crm/v3/objects/tasks/search", json={
        "filterGroups": [{"filters": [{"propertyName": "associations.contact",
                                       "operator": "EQ", "value": str(contact)}]}],
        "properties": ["hs_task_body"], "limit": 100}, verify=running.ca_cert, timeout=10,
        headers={"Authorization": f"Bearer {running.info['hubspot']['access_token']}"})
    assert made.id in {r["id"] for r in found.json()["results"]}


def test_the_associate_note_becomes_the_items_associations_and_is_never_sent() -> None:
    from state.outbox import OutboxItem
    from syncagent.pipeline import push

    seen: list[WriteItem] = []

    class Capture:
        def write(self, obj: str, operation: str, batch: list[WriteItem]) -> list[Any]:
            seen.extend(batch)
            return []

    fields = {"hs_task_subject": "Hot lead", "__key": "hubspot:task:k",
              "__associate": {"contacts": 451}, "__person_record": False}
    bare = {"hs_task_subject": "No contact", "__key": "hubspot:task:j", "__associate": None}
    items = [OutboxItem(1, "hubspot", "tasks", "create", None, 7, fields, "hubspot:task:k", 1),
             OutboxItem(2, "hubspot", "tasks", "create", None, 8, bare, "hubspot:task:j", 1)]
    push._write(Capture(), "tasks", "create", items)  # type: ignore[arg-type]
    assert seen[0].associations == {"contacts": "451"} and seen[0].key == "hubspot:task:k"
    assert seen[0].fields == {"hs_task_subject": "Hot lead"}
    assert seen[1].associations == {}


def test_refused_only_retries_what_was_not_done_and_raises_what_may_have_landed() -> None:
    from connectors.retry import RetryPolicy
    from syncagent.errors import RateLimited, RemoteTimeout

    policy = RetryPolicy(attempts=4, sleep=lambda s: None).refused_only()
    answers: list[Exception | str] = [RateLimited("429"), RateLimited("429"), "done"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert policy.call(call) == "done"              # a 429 was never carried out: sent again
    sent: list[int] = []

    def lost() -> str:
        sent.append(1)
        raise RemoteTimeout("timed out")

    with pytest.raises(RemoteTimeout):
        policy.call(lost)
    assert sent == [1]                              # a timeout is left to the caller
    assert RetryPolicy(attempts=3, sleep=lambda s: None).retry_on != policy.retry_on
