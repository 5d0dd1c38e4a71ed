"""Whole cycles against the sandbox, checked through the real client libraries."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from syncagent.pipeline.cycle import CycleOptions, run_cycle
from tests.e2e.conftest import World, WorldFactory

DECISION_FIELDS = ("Lead_Grade__c", "Lead_Score__c", "Lifecycle_Stage__c", "Segment__c",
                   "Score_Reasons__c", "OwnerId")
HS_DECISION_PROPS = ("lead_grade", "lead_score", "lifecyclestage", "lead_segment",
                     "score_reasons")


def _cycle(world: World) -> Any:
    return run_cycle(world.agent, threading.Event(), CycleOptions())


def _sf_leads(world: World) -> list[dict[str, Any]]:
    soql = ("SELECT Id, Email, IsConverted, Status, Nurture_Track__c, Disqualified_Reason__c, "
            "MQL_Date__c, " + ", ".join(DECISION_FIELDS) + " FROM Lead")
    return list(world.salesforce().query_all(soql)["records"])


def _hs_contacts(world: World) -> list[Any]:
    api = world.hubspot().crm.contacts.basic_api
    out, after = [], None
    while True:
        page = api.get_page(limit=100, after=after,
                            properties=[*HS_DECISION_PROPS, "email", "nurture_track"])
        out.extend(page.results)
        if page.paging is None or page.paging.next is None:
            return out
        after = page.paging.next.after


def test_backfill_lands_every_decision_on_both_systems_then_the_agent_goes_quiet(
    world_factory: WorldFactory,
) -> None:
    world = world_factory(leads=150)
    first = _cycle(world)
    assert first.persons_evaluated > 100 and first.written["salesforce"] > 0
    assert first.rejected == 0
    open_leads = [lead for lead in _sf_leads(world) if not lead["IsConverted"]]
    missing = [(lead["Id"], f) for lead in open_leads for f in DECISION_FIELDS
               if lead[f] in (None, "")]
    assert missing == [], f"{len(missing)} lead fields without a decision, e.g. {missing[:3]}"
    _assert_tracks_landed(world, open_leads)
    contacts = _hs_contacts(world)
    bare = [(c.id, p) for c in contacts for p in HS_DECISION_PROPS
            if not (c.properties or {}).get(p)]
    assert bare == [], f"{len(bare)} HubSpot properties without a decision, e.g. {bare[:3]}"

    echo = _cycle(world)  # reads back our own writes: they must cause no write
    assert echo.written == {"salesforce": 0, "hubspot": 0}, echo.as_json()
    assert echo.created == {"salesforce": 0, "hubspot": 0}
    quiet = _cycle(world)
    assert quiet.written == {"salesforce": 0, "hubspot": 0}
    assert quiet.api_calls["salesforce"] <= 1, quiet.as_json()
    assert quiet.api_calls["hubspot"] <= len(world.agent.hubspot.streams), quiet.as_json()


def _assert_tracks_landed(world: World, leads: list[dict[str, Any]]) -> None:
    """Where the rules assign a nurture track, the lead carries it."""
    store = world.agent.store
    links, decisions = store.persons.links(), store.decisions.of()
    checked = 0
    for lead in leads:
        decision = decisions.get(links.get(("salesforce", "Lead", lead["Id"]), -1))
        track = (decision or {}).get("reasons", {}).get("track", {})
        if track.get("nurture_track_value"):
            assert lead["Nurture_Track__c"] == track["nurture_track_value"], lead["Id"]
            checked += 1
    assert checked > 10, "the shipped rules put many seeded leads on a track"


def test_a_reps_owner_change_survives_and_a_disqualification_recycles_with_its_reason(
    world_factory: WorldFactory,
) -> None:
    world = world_factory(leads=120)
    _cycle(world)
    sf = world.sandbox.ctx.sf
    leads = [lead for lead in _sf_leads(world)
             if not lead["IsConverted"] and lead["Status"] != "Unqualified"]
    moved, dropped = leads[0], leads[1]
    users = [u["Id"] for u in sf.records("User") if u.get("IsActive")]
    new_owner = next(u for u in users if u != moved["OwnerId"])
    with world.sandbox.ctx.lock:
        sf.update("Lead", moved["Id"], {"OwnerId": new_owner})
        sf.update("Lead", dropped["Id"], {"Status": "Unqualified",
                                          "Disqualified_Reason__c": "Timing"})
    _cycle(world)
    after = {lead["Id"]: lead for lead in _sf_leads(world)}
    assert after[moved["Id"]]["OwnerId"] == new_owner, "the rep's owner was overwritten"
    recycled = after[dropped["Id"]]
    assert recycled["Lifecycle_Stage__c"] in ("Recycled", "Nurture"), recycled
    assert recycled["Disqualified_Reason__c"] == "Timing"
    assert recycled["Nurture_Track__c"], "a recycled lead goes back to a nurture track"


def test_a_rep_picked_track_reaches_hubspot_list_membership(world_factory: WorldFactory) -> None:
    world = world_factory(leads=120)
    _cycle(world)
    rules = world.agent.rules
    track = rules.nurture.tracks[0]
    links = world.agent.store.persons.links()
    by_person: dict[int, dict[str, str]] = {}
    for (system, obj, rid), pid in links.items():
        by_person.setdefault(pid, {})[f"{system}.{obj}"] = rid
    pair = next(p for p in by_person.values()
                if "salesforce.Lead" in p and "hubspot.contacts" in p)
    with world.sandbox.ctx.lock:
        world.sandbox.ctx.sf.update("Lead", pair["salesforce.Lead"],
                                    {"Nurture_Track__c": track.nurture_track_value})
    _cycle(world)
    hs = world.sandbox.ctx.hs
    contact = int(pair["hubspot.contacts"])
    assert contact in hs.list_named(track.hubspot_list).members
    lead = world.salesforce().Lead.get(pair["salesforce.Lead"])
    assert lead["Nurture_Track__c"] == track.nurture_track_value, "the rep's pick is kept"
    # the rep moves the lead to another track: it joins that list and leaves the first one
    other = rules.nurture.tracks[1]
    with world.sandbox.ctx.lock:
        world.sandbox.ctx.sf.update("Lead", pair["salesforce.Lead"],
                                    {"Nurture_Track__c": other.nurture_track_value})
    world.sandbox.ctx.clock.advance(5)      # past the search index's lag
    _cycle(world)
    _cycle(world)
    assert contact in hs.list_named(other.hubspot_list).members
    assert contact not in hs.list_named(track.hubspot_list).members


def test_hubspot_behaviour_crossing_the_mql_line_hands_the_lead_to_sales_in_one_cycle(
    world_factory: WorldFactory,
) -> None:
    world = world_factory(leads=150)
    _cycle(world)
    store = world.agent.store
    decisions = store.decisions.of()
    links = store.persons.links()
    refs_of: dict[int, dict[str, str]] = {}
    for (system, obj, rid), person in links.items():
        refs_of.setdefault(person, {})[f"{system}.{obj}"] = rid
    candidates = [pid for pid, d in decisions.items()
                  if d["grade"] and d["grade"][0] in "AB" and d["stage"] in ("Lead", "Inquiry")
                  and {"hubspot.contacts", "salesforce.Lead"} <= set(refs_of[pid])]
    assert candidates, "the seed should hold well-graded leads, in both systems, not MQL yet"
    pid = candidates[0]
    refs = refs_of[pid]
    ctx = world.sandbox.ctx
    now = ctx.clock.now()
    with ctx.lock:
        for minute in range(6):
            ctx.hs.add_event("e_submitted_form", int(refs["hubspot.contacts"]),
                             now - timedelta(minutes=minute), {"hs_form_title": "Demo Request",
                              "hs_url": "https://www.example-vendor.com/demo-request"})
            ctx.hs.add_event("e_visited_page", int(refs["hubspot.contacts"]),
                             now - timedelta(minutes=minute), {"hs_url": "https://www.example-vendor.com/pricing"})
    _cycle(world)
    lead = world.salesforce().Lead.get(refs["salesforce.Lead"])
    assert lead["Lifecycle_Stage__c"] == "MQL", store.decisions.of([pid])[pid]["reasons"]
    assert lead["MQL_Date__c"] and lead["OwnerId"]
