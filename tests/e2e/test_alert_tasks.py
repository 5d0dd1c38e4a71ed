"""Acceptance 2 of issue #14: a hot lead's pricing-page visit gives its owner one Task within
one cycle; a second visit within the cooldown (scoring.yaml alert_cooldown_hours, 24) gives
none; a visit after the cooldown gives one again."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from syncagent.pipeline.cycle import run_cycle
from tests.e2e.conftest import World, WorldFactory
from tests.e2e.loopworld import NEW_YORK, advance_to, agent_tasks, sla_kind

HIGH_GRADES = ("A+", "A")


def _hot_lead(world: World) -> tuple[int, dict[str, Any], str, dict[str, Any]]:
    """A sales-now person with an open Salesforce Lead owned by a present rep and a HubSpot
    contact: (person, decision, contact id, lead)."""
    store = world.agent.store
    sf = world.salesforce()
    reps = {u["Id"] for u in sf.query_all(
        "SELECT Id, IsActive, Out_Of_Office__c FROM User")["records"]
        if u["IsActive"] and not u["Out_Of_Office__c"]}
    refs: dict[int, dict[str, str]] = {}
    for (_system, obj, rid), pid in store.persons.links().items():
        refs.setdefault(pid, {})[obj] = rid
    leads = {r["Id"]: r for r in sf.query_all(
        "SELECT Id, OwnerId, IsConverted, Status FROM Lead")["records"]}
    for pid, decision in sorted(store.decisions.of().items()):
        mine = refs.get(pid, {})
        lead = leads.get(mine.get("Lead", ""))
        if decision["segment"] == "sales-now" and lead and "contacts" in mine \
                and not lead["IsConverted"] and lead["OwnerId"] in reps \
                and decision["owner"] == lead["OwnerId"] \
                and decision["stage"] not in ("Disqualified", "Recycled"):
            return pid, decision, mine["contacts"], lead
    raise AssertionError("the seed should hold a sales-now lead owned by a present rep")


def _visit_pricing(world: World, contact_id: str) -> None:
    """Between two cycles a minute apart, the contact opens the pricing page (an analytics
    roll-up moves the contact too)."""
    ctx = world.sandbox.ctx
    ctx.clock.advance(60)
    with ctx.lock:
        ctx.hs.add_event("e_visited_page", int(contact_id),
                         ctx.clock.now() - timedelta(seconds=30),
                         {"hs_url": "https://www.example-vendor.com/pricing",
                          "hs_title": "Pricing"})
        contact = ctx.hs.get("contacts", int(contact_id))
        assert contact is not None
        views = int(contact.properties.get("hs_analytics_num_page_views") or 0) + 1
        ctx.hs.update("contacts", int(contact_id),
                      {"hs_analytics_num_page_views": str(views)}, system=True)


def _alert_tasks(world: World, lead_id: str) -> list[dict[str, Any]]:
    return [t for t in agent_tasks(world) if t["WhoId"] == lead_id and sla_kind(t) is None]


def test_a_pricing_visit_gives_the_owner_one_task_and_the_cooldown_holds_the_next(
    world_factory: WorldFactory,
) -> None:
    world = world_factory(leads=300, seed=7)
    run_cycle(world.agent)
    run_cycle(world.agent)
    pid, decision, contact_id, lead = _hot_lead(world)
    clock = world.sandbox.ctx.clock
    # Whatever the backfill alerted on is a day old: its cooldown is over.
    advance_to(world, clock.now() + timedelta(hours=25))
    run_cycle(world.agent)
    before = {t["Id"] for t in _alert_tasks(world, lead["Id"])}

    _visit_pricing(world, contact_id)
    run_cycle(world.agent)                               # one cycle
    new = [t for t in _alert_tasks(world, lead["Id"]) if t["Id"] not in before]
    assert len(new) == 1, new
    (task,) = new
    grade = world.agent.store.decisions.of([pid])[pid]["grade"]
    assert task["OwnerId"] == lead["OwnerId"], "the alert goes to the lead's owner"
    assert task["Subject"] and task["Status"] == "Not Started"
    assert task["Priority"] == ("High" if grade in HIGH_GRADES else "Normal"), (grade, task)
    description = str(task["Description"])
    assert "pricing" in description.lower(), "the description names the activity"
    assert f"Grade {grade}" in description or f"grade {grade}" in description, description
    assert lead["Id"] in description, "a link to the record (or its id)"
    now = clock.now()
    assert task["ActivityDate"] in {now.astimezone(UTC).date().isoformat(),
                                    now.astimezone(NEW_YORK).date().isoformat()}, "due today"
    assert str(pid) in task["Idempotency_Key__c"]

    advance_to(world, clock.now() + timedelta(hours=1))
    _visit_pricing(world, contact_id)
    run_cycle(world.agent)
    assert [t["Id"] for t in _alert_tasks(world, lead["Id"]) if t["Id"] not in before] \
        == [task["Id"]], "a second visit within the cooldown gives no task"

    advance_to(world, clock.now() + timedelta(hours=24))
    _visit_pricing(world, contact_id)
    run_cycle(world.agent)
    later = [t for t in _alert_tasks(world, lead["Id"]) if t["Id"] not in before]
    assert len(later) == 2, "after the cooldown, a visit alerts again"
    assert decision["segment"] == "sales-now"
