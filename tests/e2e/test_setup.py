"""From a new org to the first sync, through the real CLI: doctor, setup, setup --apply.

A fresh sandbox has none of the agent's fields, properties, picklist values or lists, and the
integration user sees no custom field until a permission set grants it. Records are checked
through simple-salesforce and hubspot-api-client, writes through the sandbox's own counters.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from hubspot import HubSpot
from simple_salesforce import Salesforce
from typer.testing import CliRunner

from state.store import StateStore
from syncagent.cli import app
from syncagent.preflight.requirements import HS_OUTPUT_PROPERTIES, SF_OUTPUT_FIELDS
from syncagent.sandbox.common import SandboxConfig
from syncagent.sandbox.salesforce import sandbox_session
from syncagent.sandbox.server import RunningSandbox
from tests.fixtures.sandbox import SandboxFactory

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
Run = Callable[..., Result]


@pytest.fixture
def fresh(sandbox_factory: SandboxFactory, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RunningSandbox, Run]]:
    monkeypatch.chdir(tmp_path)   # no stray syncagent.yaml
    sandbox = sandbox_factory(leads=90, seed=41, config=SandboxConfig(profile="fresh"))
    state = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(state).upgrade()

    def run(*args: str, mappings: Path = MAPPINGS) -> Result:
        command = [*args, "--state", state, "--sandbox", sandbox.url, "--mappings",
                   str(mappings)]
        return CliRunner().invoke(app, command, env={"COLUMNS": "240"})

    yield sandbox, run


def _written(sandbox: RunningSandbox) -> int:
    return sum(sandbox.stats()["records_written"].values())


def _explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout[-3000:]}\n" \
           f"stderr: {result.stderr[-2000:]}\nexception: {result.exception!r}"


def _not_ok(result: Result) -> set[str]:
    """Rows not met."""
    rows = json.loads(result.stdout)["rows"]
    return {row["key"] for row in rows if row["status"] != "ok"}


def _salesforce(sandbox: RunningSandbox) -> Salesforce:
    sf = sandbox.info["salesforce"]
    return Salesforce(instance_url=sf["instance_url"], session_id=sf["session_id"],
                      session=sandbox_session(sf["instance_url"], sandbox.ca_cert),
                      version="59.0")


def _missing_in_a_fresh_org() -> set[str]:
    names = [name for name, *_ in SF_OUTPUT_FIELDS] + ["Syncagent_Id__c"]
    keys = {f"salesforce:field:{obj}.{name}" for obj in ("Lead", "Contact") for name in names}
    keys |= {"salesforce:field:Lead.Disqualified_Reason__c",
             "salesforce:field:Task.Idempotency_Key__c", "salesforce:field:User.Territory__c",
             "salesforce:field:User.Out_Of_Office__c", "salesforce:lead_status"}
    keys |= {f"hubspot:property:{name}" for name, *_ in HS_OUTPUT_PROPERTIES}
    tracks = re.findall(r"hubspot_list:\s*(.+)", (MAPPINGS / "nurture.yaml").read_text())
    keys |= {f"hubspot:list:{name.strip()}" for name in tracks}
    return keys


def test_a_fresh_org_is_refused_then_set_up_then_synced_and_setup_is_idempotent(
        fresh: tuple[RunningSandbox, Run]) -> None:
    sandbox, run = fresh
    refused = run("sync", "--once")
    assert refused.exit_code == 1, _explain(refused)
    error_lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "syncagent doctor" in error_lines[0], refused.stderr
    assert _written(sandbox) == 0

    doctor = run("doctor", "--json")
    assert doctor.exit_code == 1, _explain(doctor)
    assert _not_ok(doctor) == _missing_in_a_fresh_org()

    planned = run("setup")
    assert planned.exit_code == 0, _explain(planned)
    assert "create_field" in planned.stdout and "create_list" in planned.stdout
    assert _not_ok(run("doctor", "--json")) == _missing_in_a_fresh_org()   # nothing changed

    applied = run("setup", "--apply")
    assert applied.exit_code == 0, _explain(applied)
    assert "LeadStatus: add Lead Status value(s)" in applied.stdout
    healthy = run("doctor")
    assert healthy.exit_code == 0, _explain(healthy)
    assert _not_ok(run("doctor", "--json")) == set()    # Lead Status values included

    synced = run("sync", "--once", "--json")
    assert synced.exit_code == 0, _explain(synced)
    assert _report(synced)["rejected"] == 0, synced.stdout
    _every_open_lead_and_contact_has_the_outputs(_salesforce(sandbox))
    _every_hubspot_contact_has_the_outputs(_hubspot(sandbox), _salesforce(sandbox))
    before = sandbox.stats()["records_written"]
    again_synced = run("sync", "--once", "--json")
    assert again_synced.exit_code == 0, _explain(again_synced)
    assert (_report(again_synced)["rejected"], _report(again_synced)["written"]) == (
        0, {"salesforce": 0, "hubspot": 0}), again_synced.stdout
    rescored = run("rescore", "--json")       # everyone planned again: ranges compare equal
    assert rescored.exit_code == 0, _explain(rescored)
    assert _report(rescored)["persons_evaluated"] > 100
    assert sandbox.stats()["records_written"] == before     # nothing rewritten, no echo

    again = run("setup", "--apply", "--json")
    assert again.exit_code == 0, _explain(again)
    plan = json.loads(again.stdout[:again.stdout.rindex("}") + 1])
    assert [a for a in plan["actions"] if a["applied_by_setup"]] == []
    assert "applied 0 change(s)" in again.stdout


def _report(result: Result) -> dict[str, Any]:
    """The cycle report, the last JSON line sync --once --json prints."""
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _hubspot(sandbox: RunningSandbox) -> HubSpot:
    return HubSpot(access_token=sandbox.info["hubspot"]["access_token"], host=sandbox.url,
                   ssl_ca_cert=sandbox.ca_cert)


def _every_hubspot_contact_has_the_outputs(hs: HubSpot, sf: Salesforce) -> None:
    """Grade, score, stage and segment on every contact; the owner wherever the Salesforce
    owner has a HubSpot seat (one sandbox rep has none: HubSpot has no owner to name), and a
    company size only as one of the property's options."""
    outputs = ["lead_grade", "lead_score", "lifecyclestage", "lead_segment"]
    contacts = hs.crm.contacts.get_all(properties=[*outputs, "email", "hubspot_owner_id",
                                                   "numberofemployees"])
    seats = {str(o.email).lower(): o.id for o in hs.crm.owners.get_all()}
    seat_of = {u["Id"]: seats.get(str(u["Email"]).lower()) for u in sf.query_all(
        "SELECT Id, Email FROM User")["records"]}
    owned = sf.query_all("SELECT Email, OwnerId FROM Lead WHERE IsConverted = false")[
        "records"] + sf.query_all("SELECT Email, OwnerId FROM Contact")["records"]
    wanted: dict[str, set[str | None]] = {}     # one e-mail may be on several records
    for record in owned:
        if record["Email"]:
            wanted.setdefault(str(record["Email"]).lower(), set()).add(
                seat_of.get(record["OwnerId"]))
    options = {"1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+"}
    assert contacts and any(seat for seats in wanted.values() for seat in seats)
    for contact in contacts:
        props = contact.properties
        missing = [name for name in outputs if props.get(name) in (None, "")]
        assert not missing, (contact.id, missing)
        email = str(props["email"]).lower()
        if email in wanted:
            assert (props.get("hubspot_owner_id") or None) in wanted[email], contact.id
        assert props.get("numberofemployees") in (options | {None, ""}), contact.id


def _every_open_lead_and_contact_has_the_outputs(sf: Salesforce) -> None:
    outputs = "Lead_Grade__c, Lead_Score__c, Lifecycle_Stage__c, Segment__c, OwnerId"
    leads = sf.query_all(f"SELECT Id, {outputs} FROM Lead WHERE IsConverted = false")["records"]
    contacts = sf.query_all(f"SELECT Id, {outputs} FROM Contact")["records"]
    assert leads and contacts
    for record in [*leads, *contacts]:
        missing = [name for name in outputs.split(", ") if record.get(name) in (None, "")]
        assert not missing, (record["Id"], missing)


def _line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_check_live_names_file_and_line_of_a_mistyped_field_and_a_track_missing_from_the_picklist(
        fresh: tuple[RunningSandbox, Run], tmp_path: Path) -> None:
    sandbox, run = fresh
    assert run("setup", "--apply").exit_code == 0
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    fields = mappings / "fields.yaml"
    fields.write_text(fields.read_text().replace("{lead: Title, contact: Title}",
                                                 "{lead: Titel, contact: Title}"))
    nurture = mappings / "nurture.yaml"
    nurture.write_text(nurture.read_text().replace("tracks:\n", (
        "tracks:\n  - name: webinar-follow-up\n    hubspot_list: Newsletter 2\n"
        "    nurture_track_value: Webinar Follow-up\n"
        "    when: [{field: segment, op: equals, value: leave}]\n"), 1))
    before = _written(sandbox)

    checked = run("check", "--live", mappings=mappings)

    assert checked.exit_code == 1, _explain(checked)
    lines = checked.stderr.splitlines()
    typo = f"{fields}:{_line_of(fields, 'lead: Titel')}: Lead.Titel"
    track = f"{nurture}:{_line_of(nurture, 'Webinar Follow-up')}: 'Webinar Follow-up'"
    assert any(line.startswith(typo) for line in lines), lines
    about_track = [line for line in lines if line.startswith(track)]
    for subject in ("Lead.Nurture_Track__c", "Contact.Nurture_Track__c",
                    "contact property nurture_track"):
        assert sum(subject in line for line in about_track) == 1, about_track
    assert _written(sandbox) == before


def test_the_configured_sandbox_has_nothing_that_blocks_a_sync(sandbox: RunningSandbox,
                                                              tmp_path: Path) -> None:
    """Every other end-to-end test syncs the configured profile: doctor must let it."""
    result = CliRunner().invoke(app, ["doctor", "--json", "--sandbox", sandbox.url, "--state",
                                      f"sqlite:///{tmp_path / 'none.db'}", "--mappings",
                                      str(MAPPINGS)])
    report: dict[str, Any] = json.loads(result.stdout)
    assert result.exit_code == 0, [r for r in report["rows"] if r["status"] == "blocker"]


def _custom_fields(sf: Salesforce) -> dict[str, dict[str, Any]]:
    """What describe shows of every custom field, as the integration user sees it."""
    keep = ("type", "length", "restrictedPicklist", "externalId", "unique", "updateable")
    out = {}
    for obj in ("Lead", "Contact", "Task", "User"):
        for f in getattr(sf, obj).describe()["fields"]:
            if f["custom"]:
                out[f"{obj}.{f['name']}"] = {**{k: f[k] for k in keep}, "values": [
                    p["value"] for p in f["picklistValues"]]}
    return out


def _salesforce_rows(result: Result) -> dict[str, str]:
    return {row["key"]: row["status"] for row in json.loads(result.stdout)["rows"]
            if row["system"] == "salesforce"}


def test_the_salesforce_package_deployed_through_the_metadata_api_equals_setup_apply(
        fresh: tuple[RunningSandbox, Run], sandbox_factory: SandboxFactory,
        tmp_path: Path) -> None:
    applied_org, run = fresh
    assert run("setup", "--apply").exit_code == 0
    deployed_org = sandbox_factory(leads=90, seed=41, config=SandboxConfig(profile="fresh"))
    state = f"sqlite:///{tmp_path / 'deployed.db'}"
    StateStore(state).upgrade()

    def deployed(*args: str) -> Result:
        return CliRunner().invoke(app, [*args, "--state", state, "--sandbox", deployed_org.url,
                                        "--mappings", str(MAPPINGS)], env={"COLUMNS": "240"})

    package = tmp_path / "package"
    assert deployed("setup", "--salesforce-package", str(package)).exit_code == 0
    assert _custom_fields(_salesforce(deployed_org)) == {}        # writing it changed nothing
    archive = shutil.make_archive(str(tmp_path / "package"), "zip", package)
    sf = _salesforce(deployed_org)
    job = sf.deploy(archive, sandbox=False)
    status = sf.checkDeployStatus(job["asyncId"])
    assert status["state"] == "Succeeded", status
    permset = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'Syncagent_Integration'")
    user = sf.query("SELECT Id FROM User WHERE Username = '{}'".format(
        deployed_org.info["salesforce"]["username"]))
    sf.PermissionSetAssignment.create({"PermissionSetId": permset["records"][0]["Id"],
                                       "AssigneeId": user["records"][0]["Id"]})

    assert _custom_fields(sf) == _custom_fields(_salesforce(applied_org))
    assert _salesforce_rows(deployed("doctor", "--json")) == \
        _salesforce_rows(run("doctor", "--json"))
