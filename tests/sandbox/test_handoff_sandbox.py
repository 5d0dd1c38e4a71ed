"""The sandbox for the hand-off loop: the simulated clock by hours, a rep's status changes,
task creates in the stats, and a Task org as strict as a real one (owner a user, a real
WhoId, picklists, a unique key)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from syncagent.errors import ConfigError
from syncagent.pipeline.agent import sandbox_clock
from syncagent.sandbox.salesforce import ids
from syncagent.sandbox.server import RunningSandbox
from tests.sandbox.conftest import hs_call, reset_around
from tests.sandbox.test_salesforce_writes import login

QUIET = {"events": 0, "rep_actions": 0, "calls": 0}
KEY_PATH = "composite/sobjects/Task/Idempotency_Key__c"


@pytest.fixture
def fresh(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    yield from reset_around(sandbox)


def simulate(running: RunningSandbox, **params: Any) -> requests.Response:
    return requests.post(f"{running.url}/__sandbox/simulate", json={**QUIET, **params},
                         verify=running.ca_cert, timeout=30)


def sandbox_now(running: RunningSandbox) -> datetime:
    body = requests.get(f"{running.url}/__sandbox/clock", verify=running.ca_cert,
                        timeout=10).json()
    return datetime.fromisoformat(body["now"])


def open_lead(running: RunningSandbox, n: int = 0) -> dict[str, Any]:
    leads = sorted((r for r in running.ctx.sf.records("Lead") if not r.get("IsConverted")
                    and not r.get("IsDeleted") and str(r.get("OwnerId")).startswith("005")),
                   key=lambda r: r["Id"])
    return dict(leads[n])


def reps(running: RunningSandbox) -> list[dict[str, Any]]:
    return [u for u in running.ctx.sf.records("User") if u.get("ManagerId") and u["IsActive"]]


def task(who: str, owner: str, key: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Task"}, "Subject": "Follow up", "WhoId": who,
            "OwnerId": owner, "Priority": "High", "Status": "Not Started",
            "Idempotency_Key__c": key, **fields}


# --- the simulated clock and a rep's status changes -------------------------------------------

def test_a_bad_status_change_is_a_400_naming_it_and_changes_nothing(
        fresh: RunningSandbox) -> None:
    lead = open_lead(fresh)
    before = sandbox_now(fresh)
    answer = simulate(fresh, hours=5, lead_statuses=[
        {"lead_id": lead["Id"], "status": "Accepted"},
        {"lead_id": lead["Id"], "status": "Hot", "reason": "Timing"}])
    assert answer.status_code == 400
    assert "lead_statuses[1]" in answer.text and "'Hot'" in answer.text
    assert fresh.ctx.sf.get("Lead", lead["Id"])["Status"] == lead["Status"]  # type: ignore[index]
    assert sandbox_now(fresh) - before < timedelta(hours=1)      # the clock did not move


@pytest.mark.parametrize("change, named", [
    ({"lead_id": ids.to18("00Q000000000000"), "status": "Accepted"}, "no such open lead"),
    ({"status": "Unqualified", "reason": "Too small"}, "'Too small'"),
])
def test_unknown_leads_and_reasons_are_refused(fresh: RunningSandbox, change: dict[str, Any],
                                               named: str) -> None:
    change.setdefault("lead_id", open_lead(fresh)["Id"])
    answer = simulate(fresh, lead_statuses=[change])
    assert answer.status_code == 400 and named in answer.text


def test_hours_move_the_clock_and_statuses_are_set_as_the_owner_would(
        fresh: RunningSandbox) -> None:
    first, second = open_lead(fresh, 0), open_lead(fresh, 1)
    before = sandbox_now(fresh)
    answer = simulate(fresh, hours=52, lead_statuses=[
        {"lead_id": first["Id"], "status": "Accepted"},
        {"lead_id": second["Id"], "status": "Recycled", "reason": "Timing"}])
    assert answer.status_code == 200, answer.text
    after = sandbox_now(fresh)
    assert timedelta(hours=52) <= after - before < timedelta(hours=52, minutes=1)
    done = answer.json()["lead_statuses"]
    assert [(d["lead_id"], d["old"], d["new"]) for d in done] == [
        (first["Id"], first["Status"], "Accepted"), (second["Id"], second["Status"], "Recycled")]
    sf = login(fresh)
    rows = {r["Id"]: r for r in sf.query_all(
        "SELECT Id, Status, Disqualified_Reason__c, LastModifiedById, LastModifiedDate "
        f"FROM Lead WHERE Id IN ('{first['Id']}', '{second['Id']}')")["records"]}
    assert rows[second["Id"]]["Disqualified_Reason__c"] == "Timing"
    for lead in (first, second):       # a person's edit, by the owner, at the simulated now
        assert rows[lead["Id"]]["LastModifiedById"] == lead["OwnerId"]
        modified = datetime.strptime(rows[lead["Id"]]["LastModifiedDate"],
                                     "%Y-%m-%dT%H:%M:%S.%f%z")
        assert abs(modified - after) < timedelta(minutes=1)


def test_minutes_and_hours_add_up_and_may_not_pass_thirty_days(fresh: RunningSandbox) -> None:
    before = sandbox_now(fresh)
    assert simulate(fresh, minutes=30, hours=1).status_code == 200
    assert timedelta(minutes=90) <= sandbox_now(fresh) - before < timedelta(minutes=91)
    assert simulate(fresh, minutes=60, hours=24 * 30).status_code == 400


def test_the_agent_clock_reads_the_sandbox_time(fresh: RunningSandbox) -> None:
    clock = sandbox_clock(fresh.url, fresh.ca_cert)
    simulate(fresh, hours=72)
    assert clock() - datetime.now(UTC) > timedelta(hours=71)
    assert clock().tzinfo is UTC


def test_the_agent_clock_of_a_gone_sandbox_is_a_clear_error(fresh: RunningSandbox) -> None:
    clock = sandbox_clock("https://127.0.0.1:9", fresh.ca_cert)
    with pytest.raises(ConfigError, match="did not tell its time"):
        clock()


# --- users and managers -----------------------------------------------------------------------

def test_reps_have_active_managers_readable_through_the_api(sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    users = sf.query_all("SELECT Id, ManagerId, IsActive FROM User")["records"]
    by_id = {u["Id"]: u for u in users}
    managed = [u for u in users if u["ManagerId"]]
    assert len(managed) >= len(users) // 2
    assert all(by_id[u["ManagerId"]]["IsActive"] for u in managed)


# --- Task writes as strict as a real org -------------------------------------------------------

def _upsert(sf: Salesforce, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(sf.restful(KEY_PATH, method="PATCH",
                           json={"allOrNone": False, "records": records}))


def test_a_task_owned_by_a_queue_an_inactive_user_or_for_nobody_is_refused(
        fresh: RunningSandbox) -> None:
    sf = login(fresh)
    lead, rep = open_lead(fresh), reps(fresh)[0]
    [inactive] = fresh.ctx.sf.insert("User", [{
        "Username": "gone@example.com", "Email": "gone@example.com", "LastName": "Gone",
        "IsActive": False}])
    answers = _upsert(sf, [
        task(lead["Id"], "00G000000000001AAA", "k-queue"),
        task(lead["Id"], inactive, "k-inactive"),
        task(ids.to18("00Q000000000000"), rep["Id"], "k-nobody"),
        task(lead["Id"], rep["Id"], "k-priority", Priority="Urgent"),
        task(lead["Id"], rep["Id"], "k-status", Status="Open"),
        task(lead["Id"], rep["Id"], "k-good")])
    codes = [[e["statusCode"] for e in a["errors"]] for a in answers]
    assert codes == [["FIELD_INTEGRITY_EXCEPTION"], ["INACTIVE_OWNER_OR_USER"],
                     ["INVALID_CROSS_REFERENCE_KEY"],
                     ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"],
                     ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"], []]
    made = [t for t in fresh.ctx.sf.records("Task") if t.get("Idempotency_Key__c")]
    assert [t["Idempotency_Key__c"] for t in made] == ["k-good"]


def test_keyed_task_upserts_make_one_task_per_key_and_the_stats_count_them(
        fresh: RunningSandbox) -> None:
    sf = login(fresh)
    lead, rep = open_lead(fresh), reps(fresh)[0]
    batch = [task(lead["Id"], rep["Id"], f"sla:{n}") for n in range(3)]
    first, again = _upsert(sf, batch), _upsert(sf, batch)
    assert [a["created"] for a in first] == [True] * 3
    assert [a["created"] for a in again] == [False] * 3
    assert [a["id"] for a in again] == [a["id"] for a in first]
    # the same key twice in one call is refused for both, as Salesforce does
    twice = _upsert(sf, [task(lead["Id"], rep["Id"], "dup"), task(lead["Id"], rep["Id"], "dup")])
    assert {e["statusCode"] for a in twice for e in a["errors"]} == {"DUPLICATE_EXTERNAL_ID"}
    stats = fresh.stats()
    assert stats["tasks_created"] == {"salesforce": 3, "hubspot": 0}
    assert stats["task_calls"] == {"salesforce": 3, "hubspot": 0}


def _hs_task(contact: int, owner: int, **props: Any) -> dict[str, Any]:
    return {"properties": {"hs_task_subject": "Call back", "hs_timestamp": "2026-12-01",
                           "hubspot_owner_id": str(owner), "hs_task_priority": "HIGH",
                           **props},
            "associations": [{"to": {"id": str(contact)}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}]}


def _batch(running: RunningSandbox, inputs: list[dict[str, Any]]) -> requests.Response:
    return hs_call(running, "POST", "/crm/v3/objects/tasks/batch/create",
                   {"inputs": [{**item, "objectWriteTraceId": str(n)}
                               for n, item in enumerate(inputs)]})


def test_hubspot_task_creates_are_strict_counted_and_searchable_by_contact(
        fresh: RunningSandbox) -> None:
    fresh.set_faults({"hubspot_search_delay_seconds": 0})
    contact = min(r.id for r in fresh.ctx.hs.store("contacts").records.values()
                  if not r.archived)
    owner = next(iter(fresh.ctx.hs.owners))
    # an owner the portal does not have: the whole batch is refused, nothing written
    refused = _batch(fresh, [_hs_task(contact, owner), _hs_task(contact, 1)])
    assert refused.status_code == 400 and "hubspot_owner_id" in refused.text
    wrong_type = _hs_task(contact, owner)
    wrong_type["associations"][0]["types"][0]["associationTypeId"] = 1
    no_due = _hs_task(contact, owner)
    del no_due["properties"]["hs_timestamp"]
    answer = _batch(fresh, [_hs_task(contact, owner), _hs_task(99_999_999, owner), wrong_type,
                            no_due, _hs_task(contact, owner, hs_task_body="second")])
    body = answer.json()
    assert answer.status_code == 207
    assert sorted(i for e in body["errors"] for i in e["context"]["ids"]) == ["1", "2", "3"]
    assert len(body["results"]) == 2
    found = hs_call(fresh, "POST", "/crm/v3/objects/tasks/search", {"filterGroups": [{
        "filters": [{"propertyName": "associations.contact", "operator": "EQ",
                     "value": str(contact)}]}], "properties": ["hs_task_body"], "limit": 100})
    made = {r["id"] for r in body["results"]}
    assert made <= {r["id"] for r in found.json()["results"]}
    stats = fresh.stats()
    assert stats["task_calls"]["hubspot"] == 2
    assert stats["tasks_created"] == {"salesforce": 0, "hubspot": 2}
