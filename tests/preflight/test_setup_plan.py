"""The set-up plan from doctor's rows (pure): create what is missing, never retype or delete,
nothing to do on a second run; and the Metadata API package written from it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from syncagent.engine import load_rules
from syncagent.preflight.checks import evaluate
from syncagent.preflight.lines import MappingLines
from syncagent.preflight.package import package_files, write_package
from syncagent.preflight.requirements import Requirement, requirements
from syncagent.preflight.setup_plan import PERMISSION_SET, Action, plan
from tests.preflight.test_checks import _complete, _picklist

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NS = {"md": "http://soap.sforce.com/2006/04/metadata"}


@pytest.fixture(scope="module")
def reqs() -> list[Requirement]:
    return requirements(load_rules(MAPPINGS), MappingLines.read(MAPPINGS))


def _plan(reqs: list[Requirement], facts: dict[str, Any],
          existing: dict[str, dict[str, Any] | None] | None = None) -> list[Action]:
    return plan(reqs, evaluate(reqs, facts), facts, existing or {})


def _fresh(reqs: list[Requirement]) -> dict[str, Any]:
    facts = _complete(reqs)
    for fields in facts["salesforce"]["objects"].values():
        for name in [n for n in fields if n.endswith("__c")]:
            del fields[name]
    hs = facts["hubspot"]
    for name in ("lead_grade", "lead_score", "lead_segment", "nurture_track", "score_reasons",
                 "mql_date"):
        del hs["properties"][name]
    hs["groups"], hs["lists"] = [], {}
    return facts


def test_everything_met_plans_nothing(reqs: list[Requirement]) -> None:
    assert _plan(reqs, _complete(reqs)) == []


def test_a_fresh_org_gets_every_field_a_permission_set_its_assignment_and_the_portal_parts(
        reqs: list[Requirement]) -> None:
    actions = _plan(reqs, _fresh(reqs))
    kinds = [a.kind for a in actions]
    created = {a.target: a.payload["component"] for a in actions if a.kind == "create_field"}
    assert len(created) == sum(1 for r in reqs if r.system == "salesforce" and r.custom)
    assert created["Lead.Lead_Score__c"]["type"] == "Number"
    assert created["Lead.Score_Reasons__c"]["type"] == "LongTextArea"
    assert created["Contact.MQL_Date__c"]["type"] == "DateTime"
    assert created["User.Out_Of_Office__c"]["type"] == "Checkbox"
    key = created["Task.Idempotency_Key__c"]
    assert key["externalId"] and key["unique"] and key["type"] == "Text"
    segment = created["Lead.Segment__c"]["valueSet"]
    assert segment["restricted"] and [v["fullName"] for v in segment["valueSetDefinition"][
        "value"]] == ["sales-now", "nurture-then-sales", "other-offers", "leave"]
    assert kinds.index("create_group") < kinds.index("create_property")
    assert kinds.count("create_list") == 5 and kinds[-2:] == ["grant", "assign"]
    grants = next(a for a in actions if a.kind == "grant").payload["component"]
    readonly = {g["field"] for g in grants["fieldPermissions"] if not g["editable"]}
    assert readonly == {"Lead.Disqualified_Reason__c", "User.Territory__c",
                        "User.Out_Of_Office__c"}


def test_a_hidden_field_of_another_type_is_a_conflict_and_is_never_recreated(
        reqs: list[Requirement]) -> None:
    facts = _fresh(reqs)
    existing = {"Lead.Segment__c": {"fullName": "Lead.Segment__c", "type": "Number",
                                    "label": "Segment"}}
    actions = _plan(reqs, facts, existing)
    about = [a for a in actions if a.target == "Lead.Segment__c"]
    assert [a.kind for a in about] == ["conflict"] and "never changes" in about[0].detail
    assert not about[0].applies


def test_missing_values_are_added_keeping_every_value_the_org_has(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    facts["salesforce"]["objects"]["Lead"]["Nurture_Track__c"] = _picklist(
        ["Old Track", "Newsletter"])
    [action] = _plan(reqs, facts)
    values = [v["fullName"] for v in action.payload["component"]["valueSet"][
        "valueSetDefinition"]["value"]]
    assert action.kind == "add_values" and values[:2] == ["Old Track", "Newsletter"]
    assert set(values) == {"Old Track", "Newsletter", "Recycled Re-engage",
                           "High Fit Education", "Marketing Leaders", "Self-Serve Offers"}


def test_the_package_holds_the_same_fields_and_permission_set_as_the_plan(
        reqs: list[Requirement], tmp_path: Path) -> None:
    actions = _plan(reqs, _fresh(reqs))
    files = package_files(actions, "59.0")
    manifest = ET.fromstring(files["package.xml"])
    members = {t.findtext("md:name", namespaces=NS): [m.text for m in t.findall(
        "md:members", NS)] for t in manifest.findall("md:types", NS)}
    planned = sorted(a.target for a in actions if a.kind == "create_field")
    assert members == {"CustomField": planned, "PermissionSet": [PERMISSION_SET]}
    lead = ET.fromstring(files["objects/Lead.object"])
    names = {f.findtext("md:fullName", namespaces=NS) for f in lead.findall("md:fields", NS)}
    assert names == {t.split(".")[1] for t in planned if t.startswith("Lead.")}
    permset = ET.fromstring(files[f"permissionsets/{PERMISSION_SET}.permissionset"])
    assert len(permset.findall("md:fieldPermissions", NS)) == len(planned)
    written = write_package(tmp_path / "pkg", files)
    assert {p.relative_to(tmp_path / "pkg").as_posix() for p in written} == set(files)


STANDARD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                     "Closed - Not Converted")


def _lead_status_set() -> dict[str, Any]:
    """The LeadStatus value set as readMetadata gives it (zeep leaves unset flags None)."""
    return {"fullName": "LeadStatus", "sorted": False, "groupingStringEnum": None,
            "standardValue": [{"fullName": v, "label": v, "default": i == 0,
                               "converted": v == "Closed - Converted", "color": None}
                              for i, v in enumerate(STANDARD_STATUSES)]}


def test_missing_lead_statuses_join_the_value_set_which_keeps_every_value_and_its_flags(
        reqs: list[Requirement], tmp_path: Path) -> None:
    facts = _complete(reqs)
    facts["salesforce"]["objects"]["Lead"]["Status"] = _picklist(list(STANDARD_STATUSES))
    [action] = [a for a in _plan(reqs, facts, {"StandardValueSet.LeadStatus":
                                               _lead_status_set()}) if a.system == "salesforce"]
    assert (action.kind, action.target, action.applies) == ("add_lead_status", "LeadStatus",
                                                           True)
    values = action.payload["component"]["standardValue"]
    assert values[:4] == [{"fullName": v, "label": v, "default": i == 0,
                           "converted": v == "Closed - Converted"}
                          for i, v in enumerate(STANDARD_STATUSES)]
    added = [v["fullName"] for v in values[4:]]
    assert set(added) == {"Accepted", "Qualified", "Unqualified", "Recycled"}
    assert not any(v["converted"] or v["default"] for v in values[4:])
    files = package_files([action], "59.0")
    value_set = ET.fromstring(files["standardValueSets/LeadStatus.standardValueSet"])
    assert [v.findtext("md:fullName", namespaces=NS) for v in value_set.findall(
        "md:standardValue", NS)] == [*STANDARD_STATUSES, *added]
    assert "<name>StandardValueSet</name>" in files["package.xml"]


def test_lead_statuses_stay_a_manual_step_when_the_value_set_cannot_be_read(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    facts["salesforce"]["objects"]["Lead"]["Status"] = _picklist(list(STANDARD_STATUSES))
    [action] = [a for a in _plan(reqs, facts, {"StandardValueSet.LeadStatus": None})
                if a.system == "salesforce"]
    assert (action.kind, action.target, action.applies) == ("manual", "Lead.Status", False)
    assert "Lead Status" in action.detail
