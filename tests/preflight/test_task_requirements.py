"""doctor/setup for tasks: the Task fields an alert or SLA task is created with, the task key
an external id, User.ManagerId readable, HubSpot's contact scopes named for tasks."""

from __future__ import annotations

from syncagent.preflight.checks import BLOCKER, OK, WARNING, evaluate
from syncagent.preflight.requirements import Requirement
from tests.preflight.test_checks import _complete, _field, _picklist, _row
from tests.preflight.test_checks import reqs as reqs  # the fixture, shared


def test_a_task_priority_picklist_without_high_names_the_missing_value(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    facts["salesforce"]["objects"]["Task"]["Priority"] = _picklist(["Normal", "Low"])
    row = _row(evaluate(reqs, facts), "salesforce:field:Task.Priority")
    assert row.status != OK
    assert "'High'" in row.detail
    assert [v.value for v in row.missing_values] == ["High"]


def test_task_fields_the_user_cannot_create_are_reported_with_the_feature(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    facts["salesforce"]["objects"]["Task"]["WhoId"] = _field(
        "reference", updateable=False, createable=False)
    del facts["salesforce"]["objects"]["Task"]["Description"]
    rows = evaluate(reqs, facts)
    who = _row(rows, "salesforce:field:Task.WhoId")
    assert who.status == WARNING and "cannot edit" in who.detail
    assert "alert and SLA tasks" in who.detail
    body = _row(rows, "salesforce:field:Task.Description")
    assert body.status == WARNING and "missing" in body.detail


def test_a_task_key_that_is_not_a_unique_external_id_blocks(reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    facts["salesforce"]["objects"]["Task"]["Idempotency_Key__c"] = _field("string", length=80)
    row = _row(evaluate(reqs, facts), "salesforce:field:Task.Idempotency_Key__c")
    assert row.status == BLOCKER and "external id" in row.detail
    assert "Unique" in row.fix


def test_an_unreadable_manager_turns_escalation_to_managers_off(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    del facts["salesforce"]["objects"]["User"]["ManagerId"]
    row = _row(evaluate(reqs, facts), "salesforce:field:User.ManagerId")
    assert row.status == WARNING
    assert "manager" in row.detail and "User.ManagerId" in row.requirement


def test_every_task_field_of_the_profile_is_required_and_hubspot_scopes_name_tasks(
        reqs: list[Requirement]) -> None:
    keys = {r.key for r in reqs}
    for name in ("Subject", "Description", "ActivityDate", "Priority", "OwnerId", "Status",
                 "WhoId"):
        assert f"salesforce:field:Task.{name}" in keys
    write_scope = next(r for r in reqs if r.key == "hubspot:scope:crm.objects.contacts.write")
    assert "tasks" in write_scope.feature and write_scope.blocks
    assert all("(;" not in r.what for r in reqs)
