"""The handoff: a HubSpot-only person who reaches MQL gets exactly one Salesforce Lead."""

from __future__ import annotations

import threading
from datetime import timedelta

from syncagent.engine.operators import GRADE_RANK
from syncagent.pipeline.cycle import CycleOptions, run_cycle
from tests.e2e.conftest import World, WorldFactory


def _hubspot_only_prospect(world: World) -> tuple[int, str, str]:
    """A person known only to HubSpot, graded well enough for MQL but not MQL yet:
    (person, contact id, email)."""
    store = world.agent.store
    mql_grade = GRADE_RANK[world.agent.rules.lifecycle.mql.min_grade or "F"]   # B- never is
    refs: dict[int, list[tuple[str, str, str]]] = {}
    for ref, pid in store.persons.links().items():
        refs.setdefault(pid, []).append(ref)
    contacts = {r.remote_id: r for r in store.mirror.records("hubspot", "contacts")}
    for pid, decision in sorted(store.decisions.of().items()):
        mine = refs.get(pid, [])
        if len(mine) == 1 and mine[0][:2] == ("hubspot", "contacts") \
                and GRADE_RANK[decision["grade"] or "F"] >= mql_grade \
                and decision["stage"] != "MQL":
            contact = contacts[mine[0][2]]
            if contact.email_key:
                return pid, contact.remote_id, contact.email_key
    raise AssertionError("the seed should hold HubSpot-only people with a good grade")


def test_a_create_that_times_out_after_landing_still_makes_exactly_one_lead(
    world_factory: WorldFactory,
) -> None:
    world = world_factory(leads=150)
    run_cycle(world.agent)
    pid, contact_id, email = _hubspot_only_prospect(world)
    ctx = world.sandbox.ctx
    with ctx.lock:
        now = ctx.clock.now()
        for n in range(5):
            ctx.hs.add_event("e_submitted_form", int(contact_id), now - timedelta(minutes=n),
                             {"hs_form_title": "Demo Request",
                              "hs_url": "https://www.example-vendor.com/demo-request"})
    # Once the plan is made, every Salesforce call is applied and then left unanswered past
    # the client's timeout, until the faults clear a few seconds later: the create lands,
    # the agent sees only timeouts, and its retries must not make a second lead.
    agent = world.new_agent(salesforce={"timeout_seconds": 1.0})
    agent.clock = ctx.clock.now

    armed = [True]

    def hang_salesforce(_plans: object) -> None:
        if armed:  # once, when the first plans are made
            armed.clear()
            world.sandbox.set_faults({"salesforce": {"rate_hang": 1.0, "hang_seconds": 3}})
            threading.Timer(2.5, world.sandbox.set_faults, args=({},)).start()

    report = run_cycle(agent, options=CycleOptions(on_plans=hang_salesforce))
    hangs = [f for f in world.sandbox.stats()["faults_injected"]
             if f["system"] == "salesforce" and f["fault"] == "hang"]
    assert hangs and hangs[0]["count"] >= 1, "the create must have timed out at least once"
    run_cycle(world.new_agent())  # reads the lead back and links it
    leads = world.salesforce().query_all(
        "SELECT Id, Lifecycle_Stage__c, OwnerId, MQL_Date__c, Syncagent_Id__c FROM Lead "
        f"WHERE Email = '{email}'")["records"]
    assert len(leads) == 1, (report.as_json(), leads)
    (lead,) = leads
    assert lead["Lifecycle_Stage__c"] == "MQL" and lead["OwnerId"] and lead["MQL_Date__c"]
    assert lead["Syncagent_Id__c"] == f"sa-{pid}"
    assert world.agent.store.persons.links()[("salesforce", "Lead", lead["Id"])] == pid
    contact = world.hubspot().crm.contacts.basic_api.get_by_id(
        contact_id, properties=["salesforceleadid", "lifecyclestage"])
    assert contact.properties["salesforceleadid"] == lead["Id"], "linked back on HubSpot"
