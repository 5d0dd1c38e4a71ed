"""Change-to-visible latency through the real pipeline: a rep's edit in Salesforce, pulled,
evaluated and written to HubSpot, is measured from the lead's modification; the backfill's
first evaluations are not measured at all."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from state.models import ChangeLatency
from state.store import StateStore
from syncagent.pipeline.cycle import run_cycle
from tests.e2e.loopworld import set_lead_status, state_rows

EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def test_a_reps_edit_written_to_hubspot_is_measured_from_the_edit(world_factory: Any) -> None:
    world = world_factory(leads=60, seed=11)
    run_cycle(world.agent)                      # the backfill: every person's first evaluation
    store = StateStore(world.state_url)
    assert store.reports.latency(*EVER) == []
    links = store.persons.links()
    people = {}
    for (system, _obj, rid), pid in links.items():
        people.setdefault(pid, {})[system] = rid
    lead = next(records["salesforce"] for records in people.values()
                if {"salesforce", "hubspot"} <= records.keys()
                and records["salesforce"].startswith("00Q"))
    set_lead_status(world, [lead], "Working - Contacted")
    run_cycle(world.agent)
    [edited] = store.mirror.records("salesforce", "Lead", [lead])
    figures = [f for f in store.reports.latency(*EVER) if f.system == "hubspot"]
    store.dispose()
    assert figures and sum(f.writes for f in figures) >= 1
    assert all(0 <= f.p50_seconds <= f.p95_seconds for f in figures)
    assert edited.fields.get("Status") == "Working - Contacted"
    measured = [r for r in state_rows(world.state_url, ChangeLatency) if r.system == "hubspot"]
    assert edited.modstamp in {r.changed_at for r in measured}
