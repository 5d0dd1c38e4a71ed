"""Whole cycles on a strict HubSpot portal (issue 11): a token without the owners scope and a
portal below Enterprise switch off only what they must, every contact still gets its
decision; one invalid e-mail in a batch costs one dead letter, not a hundred."""

from __future__ import annotations

import threading

from syncagent.pipeline.cycle import CycleOptions, CycleReport, run_cycle
from syncagent.sandbox.common import HUBSPOT_SCOPES, SandboxConfig
from tests.e2e.conftest import World, WorldFactory
from tests.e2e.test_strict_org import _bare_contacts


def _cycle(world: World) -> CycleReport:
    return run_cycle(world.agent, threading.Event(), CycleOptions())


def test_no_owners_scope_and_a_starter_portal_still_land_every_decision(
        world_factory: WorldFactory) -> None:
    config = SandboxConfig(hubspot_tier="starter", hubspot_scopes=tuple(
        s for s in HUBSPOT_SCOPES if s != "crm.objects.owners.read"))
    world = world_factory(leads=80, seed=83, config=config)
    report = _cycle(world)
    off = report.features_off.get("hubspot", {})
    assert list(off) == ["owners"] and "crm.objects.owners.read" in off["owners"]
    assert report.pulled.get("calls", 0) > 0 and report.pulled.get("web_events", 0) > 0, \
        "engagements and (analytics-derived) web activity are still read"
    assert world.agent.hubspot.status()["events_api"] is False
    assert report.status == "partial" and report.rejected == 0
    assert _bare_contacts(world) == [], "every contact has its decision"


def test_one_invalid_email_in_a_hubspot_batch_costs_one_dead_letter(
        world_factory: WorldFactory) -> None:
    """Leads edited in Salesforce flow to their HubSpot contacts in one batch; one of them got
    an address HubSpot refuses (an unknown TLD). HubSpot refuses the whole batch; the agent
    lands every other update and dead-letters that one with INVALID_EMAIL."""
    world = world_factory(leads=80, seed=89, faults={"hubspot_search_delay_seconds": 0})
    _cycle(world)
    hs, sf = world.sandbox.ctx.hs, world.sandbox.ctx.sf
    linked = [r for r in hs.store("contacts").records.values()
              if not r.archived and r.properties.get("salesforceleadid")][:12]
    assert len(linked) == 12
    # Salesforce stamps edits to the second: let the edit come a clear second after the
    # agent's own HubSpot writes, or two-way e-mail sync rightly keeps HubSpot's value
    world.sandbox.ctx.clock.advance(2)
    with world.sandbox.ctx.lock:
        for n, contact in enumerate(linked):
            sf.update("Lead", contact.properties["salesforceleadid"],
                      {"Title": f"Head of Growth {n}"})
        sf.update("Lead", linked[5].properties["salesforceleadid"],
                  {"Email": "pat@example-corp.cmo"})
    world.sandbox.ctx.clock.advance(2)
    report = _cycle(world)
    assert report.rejected == 1, report.as_json()
    (letter,) = world.agent.store.outbox.dead_letters()
    titles = {c.id: hs.get("contacts", c.id).properties.get("jobtitle") for c in linked}
    assert sum(t.startswith("Head of Growth") for t in titles.values() if t) == 11
    assert titles[linked[5].id] != "Head of Growth 5"
    assert hs.get("contacts", linked[5].id).properties["email"] != "pat@example-corp.cmo"
    assert (letter["system"], letter["code"]) == ("hubspot", "INVALID_EMAIL"), letter
    assert letter["remote_id"] == str(linked[5].id)
