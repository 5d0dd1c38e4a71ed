"""Systems fail apart (issue 10): with HubSpot answering 503 to everything for a whole cycle,
Salesforce changes are still pulled, evaluated and written in that cycle; the HubSpot writes
wait in the outbox and land in the first cycle after HubSpot recovers."""

from __future__ import annotations

import threading
from typing import Any

from syncagent.pipeline.cycle import CycleOptions, CycleReport, run_cycle
from tests.connectors.conftest import fast_retry
from tests.e2e.conftest import World, WorldFactory

SENIOR = {"Title": "Chief Executive Officer", "NumberOfEmployees": 4000, "Industry": "Software"}
JUNIOR = {"Title": "Intern", "NumberOfEmployees": 3, "Industry": "Agriculture"}


def _cycle(world: World) -> CycleReport:
    return run_cycle(world.agent, threading.Event(), CycleOptions())


def _pairs(world: World) -> list[tuple[str, str, int]]:
    """(lead id, contact id, person) for persons with an open SF lead and a HubSpot contact."""
    by_person: dict[int, dict[str, str]] = {}
    for (system, obj, rid), pid in world.agent.store.persons.links().items():
        by_person.setdefault(pid, {})[f"{system}.{obj}"] = rid
    open_leads = {r["Id"] for r in world.sandbox.ctx.sf.records("Lead")
                  if not r.get("IsConverted")}
    return [(refs["salesforce.Lead"], refs["hubspot.contacts"], pid)
            for pid, refs in sorted(by_person.items())
            if refs.get("salesforce.Lead") in open_leads and "hubspot.contacts" in refs]


def _flip(world: World, pairs: list[tuple[str, str, int]]) -> dict[int, str]:
    """Move each lead's fit to the other end; returns the grade each had before."""
    decisions = world.agent.store.decisions.of([pid for _l, _c, pid in pairs])
    before = {pid: decisions[pid]["grade"] for _l, _c, pid in pairs}
    with world.sandbox.ctx.lock:
        for lead, _contact, pid in pairs:
            high = before[pid][0] in "CDF"
            world.sandbox.ctx.sf.update("Lead", lead, SENIOR if high else JUNIOR)
    return before


def test_a_hubspot_outage_leaves_salesforce_work_done_and_hubspot_writes_queued(
        world_factory: WorldFactory) -> None:
    world = world_factory(leads=90, seed=37)
    world.agent.hubspot.client.retry = fast_retry(attempts=3)  # type: ignore[attr-defined]
    _cycle(world)
    pairs = _pairs(world)[:12]
    assert len(pairs) >= 8, "the seed links leads to contacts"
    before = _flip(world, pairs)

    world.sandbox.set_faults({"hubspot": {"rate_503": 1.0}})
    outage = _cycle(world)
    assert [e["system"] for e in outage.errors] == ["hubspot"], outage.errors
    assert outage.written["hubspot"] == 0 and outage.written["salesforce"] >= len(pairs)
    decisions = world.agent.store.decisions.of([pid for _l, _c, pid in pairs])
    changed = [(lead, contact, pid) for lead, contact, pid in pairs
               if decisions[pid]["grade"] != before[pid]]
    assert len(changed) >= len(pairs) // 2, "flipping fit should move most grades"
    for lead, _contact, pid in changed:
        landed = world.salesforce().Lead.get(lead)
        assert landed["Lead_Grade__c"] == decisions[pid]["grade"], lead
        assert float(landed["Lead_Score__c"]) == float(decisions[pid]["score"]), lead
    assert world.agent.store.outbox.counts().get("pending", 0) >= len(changed)
    assert _hubspot_grades(world, changed) != {c: decisions[p]["grade"] for _l, c, p in changed}

    world.sandbox.set_faults({})
    recovered = _cycle(world)
    assert recovered.errors == [] and recovered.written["hubspot"] >= len(changed)
    assert _hubspot_grades(world, changed) == {c: decisions[p]["grade"] for _l, c, p in changed}


def _hubspot_grades(world: World, pairs: list[tuple[str, str, int]]) -> dict[str, Any]:
    """Read from the portal itself: its API answers 503 during the outage."""
    with world.sandbox.ctx.lock:
        return {contact: world.sandbox.ctx.hs.get("contacts", int(contact))
                .properties.get("lead_grade") for _lead, contact, _pid in pairs}

