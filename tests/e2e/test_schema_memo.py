"""Schema facts travel across processes (issue 9): a new `sync --once` process pays no
start-up schema read while the last one's facts are fresh, and a field deleted between two
processes is still noticed, read again and left out as a fresh read would leave it out."""

from __future__ import annotations

import threading
from typing import Any

from structlog.testing import capture_logs

from syncagent.pipeline.agent import save_usage
from syncagent.pipeline.cycle import Agent, CycleOptions, CycleReport, run_cycle
from tests.e2e.conftest import World, WorldFactory

LEAD_OUTPUTS = ("Lead_Grade__c", "Lead_Score__c", "Lifecycle_Stage__c", "OwnerId")


def _cycle(agent: Agent) -> CycleReport:
    return run_cycle(agent, threading.Event(), CycleOptions())


def _open_leads(world: World) -> list[dict[str, Any]]:
    soql = f"SELECT Id, IsConverted, {', '.join(LEAD_OUTPUTS)} FROM Lead"
    return [r for r in world.salesforce().query_all(soql)["records"] if not r["IsConverted"]]


def test_a_field_deleted_between_processes_is_noticed_read_again_and_left_out(
        world_factory: WorldFactory) -> None:
    world = world_factory(leads=80, seed=31)
    assert _cycle(world.agent).rejected == 0         # process 1 keeps the org's describe
    # Score_Reasons__c is written, never read back (long text): only a write can notice it
    world.sandbox.remove_field("Lead.Score_Reasons__c")
    world.sandbox.simulate(minutes=20, events=600, rep_actions=0, calls=0, seed=3)
    second = world.new_agent()                       # process 2 starts from the kept facts
    with capture_logs() as logs:
        report = _cycle(second)
    refreshes = [e for e in logs if e["event"] == "salesforce.schema_refresh"]
    assert [e.get("reason") for e in refreshes] == ["write refused"], refreshes
    assert report.written["salesforce"] > 0
    # as a fresh describe would have it: the feature is off, nothing is a rejection
    assert report.rejected == 0 and report.retry_pending == 0, report.as_json()
    assert report.features_off["salesforce"] == {
        "score reasons": "Lead.Score_Reasons__c does not exist or is not readable"}
    leads = _open_leads(world)
    assert leads and [(r["Id"], f) for r in leads for f in LEAD_OUTPUTS
                      if r.get(f) in (None, "")] == []
    # the describe read again was kept: the next process knows without a refusal
    world.sandbox.simulate(minutes=20, events=600, rep_actions=0, calls=0, seed=4)
    with capture_logs() as logs:
        third = _cycle(world.new_agent())
    assert third.rejected == 0 and third.written["salesforce"] > 0
    assert [e for e in logs if e["event"] == "salesforce.schema_refresh"] == []


def test_an_idle_process_after_the_backfill_reads_no_schema(
        world_factory: WorldFactory) -> None:
    """Each process as `sync --once` runs it: its own connectors, the usage it saves."""
    world = world_factory(leads=60, seed=37)
    reports, refused = [], 0
    for agent in (world.agent, world.new_agent(), world.new_agent()):
        refused = _hubspot_refusals(world)
        reports.append(_cycle(agent))
        refused = _hubspot_refusals(world) - refused
        save_usage(agent)
    first, _, idle = reports
    assert first.written["salesforce"] > 0 and first.rejected == 0
    assert idle.written == {"salesforce": 0, "hubspot": 0}
    assert idle.api_calls["salesforce"] <= 1, idle.as_json()
    hubspot_streams = world.agent.connectors["hubspot"].streams
    # One read per stream, and the tries again of any the search limit refused: a process
    # started within a second of the last one's searches may meet HubSpot's per-second
    # limit still counting them (its own limiter cannot know them)
    assert idle.api_calls["hubspot"] - refused <= len(hubspot_streams), idle.as_json()


def _hubspot_refusals(world: World) -> int:
    """HubSpot calls the sandbox refused with 429 so far."""
    return sum(c["count"] for c in world.sandbox.stats()["calls"]
               if c["system"] == "hubspot" and c["status"] == 429)
