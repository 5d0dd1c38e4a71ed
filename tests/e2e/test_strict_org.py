"""Whole cycles on strict orgs: a field removed or unreadable switches one feature off and
every other output still lands; a fresh org stops the sync before any write (issue 11)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from state.store import StateStore
from syncagent.pipeline.cycle import CycleOptions, CycleReport, run_cycle
from syncagent.sandbox.common import SandboxConfig
from tests.e2e.conftest import World, WorldFactory

ROOT = Path(__file__).resolve().parents[2]
LEAD_OUTPUTS = ("Lead_Grade__c", "Lead_Score__c", "Lifecycle_Stage__c", "Score_Reasons__c",
                "OwnerId")
HS_OUTPUTS = ("lead_grade", "lead_score", "lifecyclestage", "lead_segment", "score_reasons")


def _cycle(world: World) -> CycleReport:
    return run_cycle(world.agent, threading.Event(), CycleOptions())


def _open_leads(world: World, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    soql = f"SELECT Id, IsConverted, {', '.join(fields)} FROM Lead"
    return [r for r in world.salesforce().query_all(soql)["records"] if not r["IsConverted"]]


def _blank(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(r["Id"], f) for r in rows for f in fields if r.get(f) in (None, "")]


def _bare_contacts(world: World) -> list[tuple[str, str]]:
    api = world.hubspot().crm.contacts.basic_api
    bare, after = [], None
    while True:
        page = api.get_page(limit=100, after=after, properties=list(HS_OUTPUTS))
        bare += [(c.id, p) for c in page.results for p in HS_OUTPUTS
                 if not (c.properties or {}).get(p)]
        if page.paging is None or page.paging.next is None:
            return bare
        after = page.paging.next.after


def test_without_user_territory_routing_is_off_and_every_other_output_lands(
        world_factory: WorldFactory) -> None:
    world = world_factory(leads=90, seed=17)
    world.sandbox.remove_field("User.Territory__c")
    report = _cycle(world)
    assert report.rejected == 0 and report.written["salesforce"] > 0
    assert report.features_off == {"salesforce": {
        "territory routing": "User.Territory__c does not exist or is not readable"}}
    assert report.as_json()["features_off"]["salesforce"]["territory routing"]
    leads = _open_leads(world, (*LEAD_OUTPUTS, "Segment__c"))
    assert leads and _blank(leads, (*LEAD_OUTPUTS, "Segment__c")) == []
    assert _bare_contacts(world) == []


def test_without_read_access_to_lead_segment_the_segment_is_off_and_the_rest_lands(
        world_factory: WorldFactory) -> None:
    world = world_factory(leads=90, seed=19)
    world.sandbox.revoke_read("Lead.Segment__c")
    report = _cycle(world)
    assert report.rejected == 0 and report.retry_pending == 0
    assert set(report.features_off["salesforce"]) == {"segment"}
    leads = _open_leads(world, LEAD_OUTPUTS)      # Segment__c itself cannot be read back
    assert leads and _blank(leads, LEAD_OUTPUTS) == []
    contacts = world.salesforce().query_all("SELECT Id, Segment__c, Lead_Grade__c FROM "
                                            "Contact")["records"]
    assert contacts and _blank(contacts, ("Segment__c", "Lead_Grade__c")) == []
    assert _bare_contacts(world) == []


def test_on_a_fresh_org_sync_once_stops_before_any_write_naming_doctor(
        world_factory: WorldFactory, tmp_path: Path) -> None:
    world = world_factory(leads=30, seed=29, config=SandboxConfig(profile="fresh"))
    state_url = f"sqlite:///{tmp_path / 'cli.db'}"
    StateStore(state_url).upgrade()
    done = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--once", "--sandbox", world.sandbox.url,
         "--state", state_url, "--mappings", str(ROOT / "mappings")],
        cwd=tmp_path, env={**os.environ, "SYNCAGENT_LOG_LEVEL": "warning"},
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    # issue 12: the CLI refuses before the cycle: one line naming each system and doctor
    assert len(errors) == 1 and "syncagent doctor" in errors[0], errors
    assert "salesforce: " in errors[0] and "Lead.Lead_Grade__c" in errors[0], errors
    assert "hubspot: " in errors[0] and "lead_grade" in errors[0], errors
    assert "Traceback" not in done.stderr
    assert world.sandbox.stats()["records_written"] == {}
