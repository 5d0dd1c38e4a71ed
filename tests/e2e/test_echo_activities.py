"""Re-reading a contact the agent just wrote re-reads the activities derived from its
properties too (page views, form submissions, e-mail opens and clicks when the portal has no
events API). The same activities read again are not news: the cycle after a backfill must
re-evaluate no one, or a score that decays past a rounding step between the two cycles is
written again (issue 9, convergence)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from state import models
from syncagent.pipeline.cycle import Agent, CycleOptions, CycleReport, run_cycle
from syncagent.sandbox.common import HubSpotTier, SandboxConfig
from tests.e2e.conftest import World, WorldFactory


def _cycle(agent: Agent) -> CycleReport:
    return run_cycle(agent, threading.Event(), CycleOptions())


def _activities(world: World) -> dict[str, object]:
    table = models.Activity
    with world.agent.store.engine.connect() as conn:
        return {row.source_id: row.occurred_at for row in conn.execute(
            select(table.source_id, table.occurred_at).where(table.system == "hubspot"))}


# below enterprise the portal has no events API: page views come from the contact's counters
@pytest.mark.parametrize("tier", ["enterprise", "professional"])
def test_the_cycle_after_a_backfill_re_evaluates_no_one(world_factory: WorldFactory,
                                                        tier: HubSpotTier) -> None:
    world = world_factory(leads=60, seed=5, faults={"hubspot_search_delay_seconds": 0},
                          config=SandboxConfig(hubspot_tier=tier))
    first = _cycle(world.agent)
    assert first.written["hubspot"] > 0 and first.rejected == 0
    before = _activities(world)
    # a new process that does not know when its writes landed reads every one of them again
    second = _cycle(world.new_agent())
    assert second.pulled.get("hubspot.contacts", 0) > 0     # the written contacts were read again
    assert second.persons_evaluated == 0, second.as_json()
    assert second.planned == 0
    after = _activities(world)
    moved = {k: (before[k], after[k]) for k in before if after.get(k) != before[k]}
    assert moved == {}
