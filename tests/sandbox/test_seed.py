"""Seed data: deterministic, linked across systems as promised, and with signal in it."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pytest
import yaml

from syncagent.defaults import packaged_mappings_dir
from syncagent.sandbox.common import FaultInjector, SandboxClock, SandboxContext
from syncagent.sandbox.hubspot import HubSpotPortal
from syncagent.sandbox.salesforce import SalesforceOrg
from syncagent.sandbox.seed import seed_sandbox
from syncagent.sandbox.server import make_credentials


def seeded(tmp_path: Path, leads: int, seed: int) -> SandboxContext:
    tmp_path.mkdir(parents=True, exist_ok=True)
    clock = SandboxClock()
    creds = make_credentials(tmp_path)
    ctx = SandboxContext(clock=clock, faults=FaultInjector(), base_url="https://x",
                         sf=SalesforceOrg(clock, creds), hs=HubSpotPortal(clock),
                         credentials=creds)
    seed_sandbox(ctx, leads=leads, seed=seed)
    return ctx


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> SandboxContext:
    return seeded(tmp_path_factory.mktemp("seed"), 1500, 7)


def _emails(ctx: SandboxContext) -> list[str]:
    return [r["Email"] for r in ctx.sf.records("Lead")] + [
        r.properties.get("email", "") for r in ctx.hs.store("contacts").records.values()]


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path, ctx: SandboxContext) -> None:
    again = seeded(tmp_path / "a", 1500, 7)
    assert _emails(again) == _emails(ctx)
    assert len(again.hs.events) == len(ctx.hs.events)
    other = seeded(tmp_path / "b", 1500, 8)
    assert _emails(other) != _emails(ctx)


def test_people_are_shared_linked_or_alone_and_some_emails_duplicate(
        ctx: SandboxContext) -> None:
    leads = {r["Id"]: r for r in ctx.sf.records("Lead")}
    contacts = {r["Id"]: r for r in ctx.sf.records("Contact")}
    hs = list(ctx.hs.store("contacts").records.values())
    by_lead = [r for r in hs if r.properties.get("salesforceleadid")]
    by_contact = [r for r in hs if r.properties.get("salesforcecontactid")]
    alone = [r for r in hs if not (r.properties.get("salesforceleadid")
                                   or r.properties.get("salesforcecontactid"))]
    assert all(leads[r.properties["salesforceleadid"]]["Email"] == r.properties["email"]
               for r in by_lead)
    assert all(r.properties["salesforcecontactid"] in contacts for r in by_contact)
    assert by_lead and by_contact and alone
    linked_ids = {r.properties["salesforceleadid"] for r in by_lead}
    assert len(linked_ids) < len(leads)        # some leads exist only in Salesforce
    twice = [e for e, n in Counter(r["Email"] for r in leads.values()).items() if n > 1]
    assert len(twice) >= 10


def test_owners_match_users_with_managers_territories_and_out_of_office(
        ctx: SandboxContext) -> None:
    users = [u for u in ctx.sf.records("User") if u.get("Territory__c")]
    assert any(u.get("ManagerId") for u in users)
    assert {u["Territory__c"] for u in users} >= {"NA-East", "EMEA"}
    assert any(u.get("Out_Of_Office__c") for u in users)
    owner_emails = {o.email for o in ctx.hs.owners.values()}
    assert len(owner_emails & {u["Email"] for u in users}) == len(users) - 1


def test_campaigns_have_members_and_leads_have_activity(ctx: SandboxContext) -> None:
    assert len(list(ctx.sf.records("Campaign"))) >= 10
    assert any(m.get("LeadId") for m in ctx.sf.records("CampaignMember"))
    assert {t["CallDisposition"] for t in ctx.sf.records("Task")} >= {"Connected", "No Answer"}
    assert {e.event_type for e in ctx.hs.events} >= {"e_visited_page", "e_submitted_form",
                                                     "e_opened_email", "e_clicked_email",
                                                     "e_attended_webinar"}
    oldest = min(e.occurred_at for e in ctx.hs.events)
    assert 80 <= (ctx.clock.now() - oldest).days <= 90


def test_activity_intensity_follows_fit(ctx: SandboxContext) -> None:
    """Senior people at fitting companies browse more than students: a model can learn it."""
    def views(titles: tuple[str, ...]) -> float:
        rows = [int(r.properties.get("hs_analytics_num_page_views") or 0)
                for r in ctx.hs.store("contacts").records.values()
                if r.properties.get("jobtitle") in titles]
        return statistics.mean(rows)

    senior = views(("CEO", "CMO", "CRO", "CTO", "Chief Revenue Officer", "COO", "VP Marketing",
                    "VP of Sales", "VP Revenue Operations", "VP Demand Generation"))
    junior = views(("Student", "Intern", "Graduate Assistant", "Job Seeker"))
    assert senior > 1.3 * junior


def test_the_agents_values_are_those_of_the_shipped_mapping_files(ctx: SandboxContext) -> None:
    """Read independently of the engine's loader: the YAML itself, as an admin edits it."""
    mappings = packaged_mappings_dir()
    nurture = yaml.safe_load((mappings / "nurture.yaml").read_text())
    segments = yaml.safe_load((mappings / "scoring.yaml").read_text())["segments"]["names"]
    tracks = [t["nurture_track_value"] for t in nurture["tracks"]]
    lead = ctx.sf.schema.objects["Lead"].fields
    assert list(lead["Nurture_Track__c"].picklist) == [*tracks, "None"]
    assert set(lead["Segment__c"].picklist) == set(segments.values())
    assert "Recycled" in lead["Lifecycle_Stage__c"].picklist
    contact_props = ctx.hs.property_defs("contacts")
    assert contact_props["nurture_track"].options == [*tracks, "None"]
    assert set(contact_props["lead_segment"].options) == set(segments.values())
    manual = {hs_list.name for hs_list in ctx.hs.lists.values()
              if hs_list.processing_type == "MANUAL"}
    assert {t["hubspot_list"] for t in nurture["tracks"]} <= manual
