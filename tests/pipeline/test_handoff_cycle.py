"""The handoff step inside whole cycles, against the sandbox: a step due by the cycle's time
fires in that cycle as exactly one Salesforce Task (counted in the run record), later cycles
add none, and a rep's recycle lands in stage history and feedback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from state.handoff import FIRED, PENDING
from syncagent.pipeline.cycle import run_cycle
from tests.e2e.conftest import World, WorldFactory, world_factory  # noqa: F401 (the fixture)


def _new_mql(world: World) -> int:
    """A well-graded lead in both systems whose HubSpot behaviour makes it an MQL now, routed
    to a rep: its person id (its SLA steps are pending)."""
    store = world.agent.store
    refs_of: dict[int, dict[str, str]] = {}
    for (system, obj, rid), person in store.persons.links().items():
        refs_of.setdefault(person, {})[f"{system}.{obj}"] = rid
    candidates = [pid for pid, d in sorted(store.decisions.of().items())
                  if d["grade"] and d["grade"][0] in "AB" and d["stage"] in ("Lead", "Inquiry")
                  and {"hubspot.contacts", "salesforce.Lead"} <= set(refs_of[pid])]
    ctx = world.sandbox.ctx
    now = ctx.clock.now()
    for pid in candidates[:5]:
        with ctx.lock:
            for minute in range(6):
                ctx.hs.add_event("e_submitted_form", int(refs_of[pid]["hubspot.contacts"]),
                                 now - timedelta(minutes=minute),
                                 {"hs_form_title": "Demo Request",
                                  "hs_url": "https://www.example-vendor.com/demo-request"})
    run_cycle(world.agent)
    pending = store.handoff.pending_timers(candidates[:5])
    assert pending, "a new MQL routed to a rep has pending SLA steps"
    return min(pending)


def _tasks_keyed(world: World, key: str) -> list[dict[str, object]]:
    soql = ("SELECT Id, OwnerId, WhoId, Subject FROM Task "
            f"WHERE Idempotency_Key__c = '{key}'")   # our own key: no quote can occur
    return list(world.salesforce().query_all(soql)["records"])


@pytest.fixture
def mql(world_factory: WorldFactory) -> tuple[World, int]:  # noqa: F811
    """A world after its first cycle, with one new MQL routed to a rep: (world, person)."""
    world = world_factory(leads=150)
    run_cycle(world.agent)
    return world, _new_mql(world)


def test_a_step_due_by_the_cycle_fires_once_as_one_task_and_never_again(
    mql: tuple[World, int],
) -> None:
    world, pid = mql
    store = world.agent.store
    first = min(store.handoff.pending_timers([pid])[pid], key=lambda t: t.due_at)
    world.sandbox.ctx.clock.advance(
        (first.due_at - world.sandbox.ctx.clock.now()).total_seconds() + 60)
    report = run_cycle(world.agent)
    (step,) = [t for t in store.handoff.timers_of([first.person_id])[first.person_id]
               if t.key == first.key]
    assert step.status == FIRED and step.fired_at is not None
    assert report.tasks_queued >= 1
    assert store.runs.recent(1)[0]["counts"]["tasks_queued"] == report.tasks_queued
    assert "tasks_queued" not in report.as_json(), "not in the sync --json contract"
    (task,) = _tasks_keyed(world, first.key)
    assert task["OwnerId"] == first.recipient and task["WhoId"]
    for _ in range(2):
        world.sandbox.ctx.clock.advance(60)
        run_cycle(world.agent)
    assert len(_tasks_keyed(world, first.key)) == 1
    (given,) = [t for t in store.handoff.tasks_of(first.person_id) if t.key == first.key]
    assert given.system == "salesforce" and given.kind == first.kind


def test_a_reps_recycle_becomes_history_and_feedback_and_stops_the_timers(
    mql: tuple[World, int],
) -> None:
    world, pid = mql
    store = world.agent.store
    lead_id = next(rid for (system, obj, rid), p in store.persons.links().items()
                   if p == pid and (system, obj) == ("salesforce", "Lead"))
    owner = store.decisions.of([pid])[pid]["owner"]
    with world.sandbox.ctx.lock:
        world.sandbox.ctx.sf.update("Lead", lead_id, {"Status": "Unqualified",
                                                      "Disqualified_Reason__c": "Timing"})
    world.sandbox.ctx.clock.advance(timedelta(minutes=5).total_seconds())
    run_cycle(world.agent)
    (feedback,) = [f for f in store.handoff.feedback_between() if f.person_id == pid]
    assert (feedback.outcome, feedback.reason, feedback.lead_status, feedback.owner) == \
        ("recycled", "Timing", "Unqualified", owner)
    steps = store.handoff.history(pid)
    assert (steps[-1].from_stage, steps[-1].cause, steps[-1].actor) == ("MQL", "recycle", owner)
    assert PENDING not in {t.status for t in store.handoff.timers_of([pid])[pid]}
