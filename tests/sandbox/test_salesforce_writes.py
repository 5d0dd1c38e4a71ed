"""Salesforce sandbox: writes through the unmodified simple-salesforce (sObject Collections,
single-record CRUD, upsert, composite), per-record validation, SystemModstamp, replication."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from syncagent.sandbox.salesforce import sandbox_session
from syncagent.sandbox.server import RunningSandbox


@pytest.fixture
def fresh(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    """The shared sandbox, reset before and after (writes and fault profiles do not leak)."""
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def login(running: RunningSandbox) -> Salesforce:
    info = running.info["salesforce"]
    return Salesforce(username=info["username"], password=info["password"],
                      security_token=info["security_token"],
                      session=sandbox_session(running.url, running.ca_cert))


def lead(**fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "LastName": "Doe", "Company": "Acme", **fields}


def lead_ids(sf: Salesforce, n: int, where: str = "IsConverted = false") -> list[str]:
    rows = sf.query(f"SELECT Id FROM Lead WHERE {where} ORDER BY Id LIMIT {n}")["records"]
    return [r["Id"] for r in rows]


def codes(result: dict[str, Any]) -> list[str]:
    return [e["statusCode"] for e in result["errors"]]


def test_collection_update_of_200_with_one_bad_record_fails_only_that_record(
        fresh: RunningSandbox) -> None:
    sf = login(fresh)
    ids = lead_ids(sf, 200)
    records = [{"attributes": {"type": "Lead"}, "Id": i, "Lead_Score__c": 50} for i in ids]
    records[117]["Lifecycle_Stage__c"] = "Hot Prospect"
    results = sf.restful("composite/sobjects", method="PATCH",
                         json={"allOrNone": False, "records": records})
    assert [r["id"] for r in results] == ids          # request order
    assert [r["success"] for r in results].count(False) == 1
    assert codes(results[117]) == ["INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"]
    assert results[117]["errors"][0]["fields"] == ["Lifecycle_Stage__c"]
    assert fresh.ctx.sf.get("Lead", ids[0])["Lead_Score__c"] == 50   # type: ignore[index]
    assert fresh.ctx.sf.get("Lead", ids[117])["Lead_Score__c"] is None   # type: ignore[index]


def test_collection_of_201_records_is_rejected_whole(sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="POST",
                   json={"records": [lead() for _ in range(201)]})
    assert caught.value.content == [{
        "message": "record limit reached. cannot submit more than 200 records into this call",
        "errorCode": "EXCEEDED_ID_LIMIT"}]


def test_all_or_none_rolls_back_the_good_records(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    before = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    results = sf.restful("composite/sobjects", method="POST", json={
        "allOrNone": True, "records": [lead(Email="a@example.com"), lead(Lead_Grade__c="ABC")]})
    assert codes(results[0]) == ["ALL_OR_NONE_OPERATION_ROLLED_BACK"]
    assert codes(results[1]) == ["STRING_TOO_LONG"]
    assert "max length=2" in results[1]["errors"][0]["message"]
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == before


@pytest.mark.parametrize(("record", "code"), [
    (lead(SystemModstamp="2026-01-01T00:00:00Z"), "INVALID_FIELD_FOR_INSERT_UPDATE"),
    (lead(IsConverted=True, Status="Qualified", ConvertedDate="2026-01-01"),
     "INVALID_FIELD_FOR_INSERT_UPDATE"),
    ({"attributes": {"type": "Lead"}, "LastName": "Doe"}, "REQUIRED_FIELD_MISSING"),
    (lead(Status="Maybe"), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
    (lead(Favourite_Colour__c="blue"), "INVALID_FIELD"),
    (lead(Email="not-an-email"), "INVALID_EMAIL_ADDRESS"),
    (lead(OwnerId="005000000000000AAA"), "INVALID_CROSS_REFERENCE_KEY"),
])
def test_create_validation_codes(sandbox: RunningSandbox, record: dict[str, Any],
                                 code: str) -> None:
    sf = login(sandbox)
    [result] = sf.restful("composite/sobjects", method="POST", json={"records": [record]})
    assert result["success"] is False
    assert codes(result)[0] == code


def test_update_of_converted_and_deleted_leads_fails_per_record(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    with fresh.ctx.lock:
        [converted] = fresh.ctx.sf.insert("Lead", [{"LastName": "Conv", "Company": "C",
                                                    "IsConverted": True, "Status": "Qualified"}])
    [gone, fine] = lead_ids(sf, 2)
    sf.Lead.delete(gone)
    results = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Lead"}, "Id": i, "Title": "VP"} for i in (converted, gone, fine)]})
    assert codes(results[0]) == ["CANNOT_UPDATE_CONVERTED_LEAD"]
    assert codes(results[1]) == ["ENTITY_IS_DELETED"]
    assert results[2]["success"] is True


def test_injected_rejections_are_custom_validation_exceptions(fresh: RunningSandbox) -> None:
    fresh.set_faults({"seed": 3, "salesforce": {"rate_reject": 1.0}})
    sf = login(fresh)
    [result] = sf.restful("composite/sobjects", method="POST", json={"records": [lead()]})
    assert codes(result) == ["FIELD_CUSTOM_VALIDATION_EXCEPTION"]


def test_system_modstamp_moves_on_user_and_system_updates(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    [lead_id] = lead_ids(sf, 1)
    soql = format_soql("SELECT SystemModstamp, LastModifiedDate FROM Lead WHERE Id = {}",
                       lead_id)
    before = sf.query(soql)["records"][0]
    fresh.ctx.clock.advance(5)
    assert sf.Lead.update(lead_id, {"Title": "CTO"}) == 204
    after_user = sf.query(soql)["records"][0]
    assert after_user["SystemModstamp"] > before["SystemModstamp"]
    assert after_user["LastModifiedDate"] > before["LastModifiedDate"]
    fresh.ctx.clock.advance(5)
    with fresh.ctx.lock:
        fresh.ctx.sf.update("Lead", lead_id, {"Lead_Score__c": 1}, system=True)
    after_system = sf.query(soql)["records"][0]
    assert after_system["SystemModstamp"] > after_user["SystemModstamp"]
    assert after_system["LastModifiedDate"] == after_user["LastModifiedDate"]


def test_single_record_crud_and_404_after_delete(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    created = sf.Lead.create({"LastName": "Solo", "Company": "One", "Lead_Grade__c": "A1"})
    assert created["success"] is True and created["id"].startswith("00Q")
    rec = sf.Lead.get(created["id"])
    assert rec["Lead_Grade__c"] == "A1" and rec["Status"] == "Open - Not Contacted"
    assert sf.Lead.update(created["id"], {"Segment__c": "sales-now"}) == 204
    assert sf.Lead.delete(created["id"]) == 204
    with pytest.raises(Exception) as caught:
        sf.Lead.get(created["id"])
    assert getattr(caught.value, "status", None) == 404


def test_task_upsert_by_idempotency_key_and_duplicate_value(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    [who] = lead_ids(sf, 1)
    task = {"WhoId": who, "Subject": "Call", "Status": "Completed"}
    first = sf.Task.upsert("Idempotency_Key__c/sync-1", task, raw_response=True)
    again = sf.Task.upsert("Idempotency_Key__c/sync-1", task, raw_response=True)
    assert (first.status_code, first.json()["created"]) == (201, True)
    assert (again.status_code, again.json()["created"]) == (200, False)
    assert again.json()["id"] == first.json()["id"]
    results = sf.restful("composite/sobjects/Task/Idempotency_Key__c", method="PATCH", json={
        "records": [{"attributes": {"type": "Task"}, "Idempotency_Key__c": k, **task}
                    for k in ("sync-1", "sync-2")]})
    assert [r["created"] for r in results] == [False, True]
    [dup] = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Task"}, "Idempotency_Key__c": "SYNC-2", **task}]})
    assert codes(dup) == ["DUPLICATE_VALUE"]


def test_composite_runs_subrequests_with_references_as_one_api_call(
        fresh: RunningSandbox) -> None:
    sf = login(fresh)
    sf.query("SELECT Id FROM Lead LIMIT 1")
    used = sf.api_usage["api-usage"].used
    body = {"allOrNone": False, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Lead", "referenceId": "new",
         "body": {"LastName": "Ref", "Company": "Co"}},
        {"method": "GET", "referenceId": "read",
         "url": "/services/data/v59.0/sobjects/Lead/@{new.id}?fields=LastName"},
        {"method": "GET", "referenceId": "count",
         "url": "/services/data/v59.0/query?q=SELECT+COUNT()+FROM+Lead"},
    ]}
    out = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [201, 200, 200]
    assert out[1]["body"]["LastName"] == "Ref"
    sf.query("SELECT Id FROM Lead LIMIT 1")
    assert sf.api_usage["api-usage"].used == used + 2


def test_composite_over_25_subrequests_is_refused(sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    sub = {"method": "GET", "url": "/services/data/v59.0/limits", "referenceId": "x"}
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json={"compositeRequest": [sub] * 26})


def test_deleted_and_updated_resources(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    [gone, edited] = lead_ids(sf, 2)
    start = fresh.ctx.clock.now() - timedelta(minutes=5)
    fresh.ctx.clock.advance(2)
    sf.Lead.delete(gone)
    sf.Lead.update(edited, {"Title": "Head of Ops"})
    fresh.ctx.clock.advance(120)
    end = fresh.ctx.clock.now()
    deleted = sf.Lead.deleted(start, end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [gone]
    assert deleted["deletedRecords"][0]["deletedDate"].endswith("+0000")
    assert "earliestDateAvailable" in deleted and "latestDateCovered" in deleted
    updated = sf.Lead.updated(start, end)
    assert edited in updated["ids"] and gone not in updated["ids"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.deleted(end - timedelta(days=16), end)
    assert caught.value.content[0]["errorCode"] == "INVALID_REPLICATION_DATE"  # type: ignore[index]


def test_collection_delete_reports_per_id(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    [a, b] = lead_ids(sf, 2)
    sf.Lead.delete(b)
    results = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{a},{b}", "allOrNone": "false"})
    assert results[0]["success"] is True
    assert codes(results[1]) == ["ENTITY_IS_DELETED"]


def test_describe_reports_types_lengths_and_restricted_picklists(
        sandbox: RunningSandbox) -> None:
    sf = login(sandbox)
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert fields["Lead_Grade__c"]["length"] == 2
    assert fields["Lifecycle_Stage__c"]["restrictedPicklist"] is True
    assert "MQL" in [p["value"] for p in fields["Lifecycle_Stage__c"]["picklistValues"]]
    assert fields["SystemModstamp"]["updateable"] is False
    assert fields["MQL_Date__c"]["type"] == "datetime"
    assert fields["Score_Reasons__c"]["length"] == 32768
    task_fields = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert task_fields["Idempotency_Key__c"]["externalId"] is True
    names = {o["name"] for o in sf.describe()["sobjects"]}
    assert {"Lead", "Contact", "Account", "User", "Task", "Event", "Campaign",
            "CampaignMember"} <= names


def test_composite_all_or_none_rolls_back_earlier_subrequests(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    before = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    out = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Lead", "referenceId": "new",
         "body": {"LastName": "Gone", "Company": "Co"}},
        {"method": "PATCH", "url": "/services/data/v59.0/sobjects/Lead/@{new.id}",
         "referenceId": "bad", "body": {"Status": "Not a status"}},
    ]})["compositeResponse"]
    assert [r["httpStatusCode"] for r in out] == [400, 400]
    assert out[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert out[1]["body"][0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == before


def test_campaign_membership_is_unique_per_person(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    member = sf.query("SELECT CampaignId, LeadId FROM CampaignMember WHERE LeadId != null "
                      "LIMIT 1")["records"][0]
    [result] = sf.restful("composite/sobjects", method="POST", json={"records": [{
        "attributes": {"type": "CampaignMember"}, "CampaignId": member["CampaignId"][:15],
        "LeadId": member["LeadId"], "Status": "Responded"}]})
    assert codes(result) == ["DUPLICATE_VALUE"]


def test_deleting_a_lead_deletes_its_tasks_and_memberships(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    tasks = sf.query_all("SELECT WhoId FROM Task WHERE WhoId != null")["records"]
    who = next(t["WhoId"] for t in tasks if t["WhoId"].startswith("00Q"))
    live = format_soql("SELECT COUNT() FROM Task WHERE WhoId = {}", who)
    assert sf.query(live)["totalSize"] > 0
    sf.Lead.delete(who)
    assert sf.query(live)["totalSize"] == 0
    gone = sf.query_all(format_soql("SELECT Id, IsDeleted FROM Task WHERE WhoId = {}", who),
                        include_deleted=True)["records"]
    assert gone and all(r["IsDeleted"] for r in gone)
    members = format_soql("SELECT COUNT() FROM CampaignMember WHERE LeadId = {}", who)
    assert sf.query(members)["totalSize"] == 0


def test_a_converted_lead_is_read_only_and_its_contact_exists(fresh: RunningSandbox) -> None:
    sf = login(fresh)
    [lead_id] = lead_ids(sf, 1)
    with fresh.ctx.lock:
        contact_id = fresh.ctx.sf.convert_lead(lead_id)
    rec = sf.Lead.get(lead_id)
    assert rec["IsConverted"] is True and rec["ConvertedContactId"] == contact_id
    assert sf.Contact.get(contact_id)["LastName"] == rec["LastName"]
    [result] = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Lead"}, "Id": lead_id, "Lead_Score__c": 1}]})
    assert codes(result) == ["CANNOT_UPDATE_CONVERTED_LEAD"]


def test_last_modified_by_tells_rep_edits_from_integration_writes(
        fresh: RunningSandbox) -> None:
    sf = login(fresh)
    [lead_id] = lead_ids(sf, 1)
    soql = format_soql("SELECT OwnerId, LastModifiedById FROM Lead WHERE Id = {}", lead_id)
    sf.Lead.update(lead_id, {"Title": "COO"})
    api_edit = sf.query(soql)["records"][0]
    assert api_edit["LastModifiedById"] == fresh.ctx.sf.integration_user_id
    with fresh.ctx.lock:
        fresh.ctx.sf.update("Lead", lead_id, {"Status": "Working - Contacted"})
    rep_edit = sf.query(soql)["records"][0]
    assert rep_edit["LastModifiedById"] == rep_edit["OwnerId"] != api_edit["LastModifiedById"]
