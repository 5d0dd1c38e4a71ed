"""A third CRM, added as docs/adding-a-connector.md says (tests/e2e/memcrm/), runs whole
cycles beside the sandboxed Salesforce and HubSpot with no change to the pipeline or engine."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from connectors.registry import register, registered, unregister
from state.store import StateStore
from syncagent.pipeline.cycle import CycleOptions, CycleReport, run_cycle
from tests.e2e.conftest import World, WorldFactory
from tests.e2e.memcrm.connector import MemCRM, MemCRMConnector
from tests.e2e.memcrm.profile import OUTPUTS, PROFILE, SYSTEM

LEADS, SEED = 60, 41


def _cycle(world: World) -> CycleReport:
    return run_cycle(world.agent, threading.Event(), CycleOptions())


def _open_leads(world: World) -> dict[str, dict[str, Any]]:
    """Open leads by e-mail, for the e-mails only one lead has (two are an ambiguity the agent
    does not resolve: a MemCRM person with that e-mail rightly gets a person of its own)."""
    soql = ("SELECT Id, Email, IsConverted, Lead_Grade__c, Lead_Score__c, Lifecycle_Stage__c "
            "FROM Lead WHERE Email != null ORDER BY Email")
    records = world.salesforce().query_all(soql)["records"]
    seen = Counter(r["Email"].lower() for r in records)
    return {r["Email"].lower(): r for r in records
            if seen[r["Email"].lower()] == 1 and not r["IsConverted"]}


def test_a_third_connector_gets_every_decision_and_the_other_two_see_no_difference(
        world_factory: WorldFactory, tmp_path: Path) -> None:
    baseline = _cycle(world_factory(leads=LEADS, seed=SEED))

    url = f"sqlite:///{tmp_path / 'with-memcrm.db'}"
    StateStore(url).upgrade()
    world = world_factory(leads=LEADS, seed=SEED, state_url=url)
    emails = sorted(_open_leads(world))[:8]
    remote = MemCRM()
    for n, email in enumerate(emails):
        remote.add(f"p{n}", {"email": email.upper(), "name": f"Person {n}"},
                   world.agent.clock() - timedelta(minutes=5))
    register(PROFILE)
    try:
        world.agent.connectors = {**world.agent.connectors,
                                  SYSTEM: MemCRMConnector(remote, world.agent.clock)}
        first = _cycle(world)
        again = _cycle(world)
    finally:
        unregister(SYSTEM)
    assert SYSTEM not in registered()

    # MemCRM's people are matched to their Salesforce leads by e-mail and get the same decision
    assert first.status == "ok" and first.rejected == 0, first.errors
    assert first.pulled[f"{SYSTEM}.people"] == len(emails)
    assert first.written[SYSTEM] == len(emails) and first.created[SYSTEM] == 0
    assert remote.write_calls and max(remote.write_calls) <= PROFILE.batch_size
    leads = _open_leads(world)
    for record in remote.people.values():
        lead = leads[record["email"].lower()]
        assert record[OUTPUTS["grade"]] == lead["Lead_Grade__c"]
        assert float(record[OUTPUTS["score"]]) == float(lead["Lead_Score__c"])
        stage = "hot" if lead["Lifecycle_Stage__c"] in ("MQL", "SQL") else "warm"
        assert record[OUTPUTS["stage"]] == stage and record[OUTPUTS["reasons"]]

    # Salesforce and HubSpot get exactly what they get without the third system
    for system in ("salesforce", "hubspot"):
        assert first.written[system] == baseline.written[system], (first.written, baseline)
        assert first.created[system] == baseline.created[system]
    assert set(first.as_json()["written"]) == {"salesforce", "hubspot", SYSTEM}
    assert "people" in first.as_json()["pulled"]

    # reading back the agent's own writes causes no write anywhere
    assert again.written == {"salesforce": 0, "hubspot": 0, SYSTEM: 0}, again.as_json()
