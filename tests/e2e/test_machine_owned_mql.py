"""A lead the integration user owns is nobody's yet (README: "the integration user and queues
always do" count as unassigned): when it reaches MQL it is routed to a rep, and its SLA
tasks go to that rep, never to the integration user."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from syncagent.pipeline.cycle import run_cycle
from tests.e2e.conftest import WorldFactory
from tests.e2e.loopworld import pool_world


def test_an_mql_owned_by_the_integration_user_is_routed_to_a_pool_member(
    world_factory: WorldFactory, tmp_path: Path,
) -> None:
    pw = pool_world(world_factory, tmp_path)
    run_cycle(pw.agent)
    ctx = pw.world.sandbox.ctx
    with ctx.lock:
        now = ctx.clock.now()
        machine = ctx.sf.integration_user_id
        (lead_id,) = ctx.sf.insert("Lead", [{
            "FirstName": "Web", "LastName": "Form", "Email": "web.form@newbuyer.example.com",
            "Title": "VP Marketing", "Company": "New Buyer", "NumberOfEmployees": 200,
            "Industry": "Technology", "Country": "US", "Status": "Open - Not Contacted",
            "LeadSource": "Web", "OwnerId": machine}])
        ctx.sf.insert("Event", [{
            "WhoId": lead_id, "Subject": "Demo", "Type": "Demo", "OwnerId": machine,
            "StartDateTime": now - timedelta(hours=h), "DurationInMinutes": 30,
            "EndDateTime": now - timedelta(hours=h) + timedelta(minutes=30),
            "ActivityDateTime": now - timedelta(hours=h)} for h in (3, 5, 7)])
    run_cycle(pw.agent)
    lead = pw.world.salesforce().query_all(
        f"SELECT OwnerId, Lifecycle_Stage__c FROM Lead WHERE Id = '{lead_id}'")["records"][0]
    assert lead["Lifecycle_Stage__c"] == "MQL"
    assert lead["OwnerId"] in {rep.id for rep in pw.pool}, lead
