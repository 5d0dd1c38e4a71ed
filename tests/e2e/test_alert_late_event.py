"""An activity the API shows late still alerts. HubSpot's search and events show a new event
seconds to minutes after it happened (API-FACTS.md, "Search lag"); the pull reads with a
lookback for that reason. A pricing visit that happened just before a cycle but reached the
API only after it must still give the owner one task in the next cycle."""

from __future__ import annotations

from datetime import timedelta

from syncagent.pipeline.cycle import run_cycle
from tests.e2e.conftest import WorldFactory
from tests.e2e.loopworld import advance_to
from tests.e2e.test_alert_tasks import _alert_tasks, _hot_lead


def test_a_visit_that_reaches_the_api_after_the_cycle_still_alerts(
    world_factory: WorldFactory,
) -> None:
    world = world_factory(leads=300, seed=7)
    run_cycle(world.agent)
    run_cycle(world.agent)
    _pid, _decision, contact_id, lead = _hot_lead(world)
    ctx = world.sandbox.ctx
    advance_to(world, ctx.clock.now() + timedelta(hours=25))
    visited = ctx.clock.now()
    ctx.clock.advance(20)
    run_cycle(world.agent)          # the visit has happened, but the API does not show it yet
    before = {t["Id"] for t in _alert_tasks(world, lead["Id"])}
    ctx.clock.advance(40)
    with ctx.lock:                  # now it does
        ctx.hs.add_event("e_visited_page", int(contact_id), visited,
                         {"hs_url": "https://www.example-vendor.com/pricing",
                          "hs_title": "Pricing"})
        ctx.hs.update("contacts", int(contact_id), {}, system=True)
    run_cycle(world.agent)
    new = [t for t in _alert_tasks(world, lead["Id"]) if t["Id"] not in before]
    assert len(new) == 1, "a late-arriving pricing visit must alert once"
