"""Requirements from the shipped mappings, checked against hand-made schema facts (no I/O)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from syncagent.engine import load_rules
from syncagent.preflight.checks import BLOCKER, OK, WARNING, Row, blockers, evaluate
from syncagent.preflight.lines import MappingLines
from syncagent.preflight.requirements import Requirement, requirements

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


@pytest.fixture(scope="module")
def reqs() -> list[Requirement]:
    return requirements(load_rules(MAPPINGS), MappingLines.read(MAPPINGS))


def _field(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "length": extra.pop("length", 255), "updateable": True,
            "createable": True, "externalId": False, "unique": False, **extra}


def _picklist(values: list[str], restricted: bool = True) -> dict[str, Any]:
    return _field("picklist", restrictedPicklist=restricted,
                  picklistValues=[{"value": v, "active": True} for v in values])


def _complete(reqs: list[Requirement]) -> dict[str, Any]:
    """Facts of an org and portal that meet every requirement."""
    objects: dict[str, dict[str, Any]] = {}
    properties: dict[str, Any] = {}
    lists: dict[str, Any] = {}
    for r in reqs:
        values = [v.value for v in r.values]
        if r.system == "salesforce" and r.object:
            kind = {"number": "double", "longtext": "textarea", "datetime": "datetime",
                    "checkbox": "boolean", "picklist": "picklist", "mapped:picklist":
                    "picklist", "mapped:integer": "int", "mapped:number": "double",
                    "mapped:date": "date", "mapped:boolean": "boolean"}.get(r.type, "string")
            entry = _picklist(values) if kind == "picklist" else _field(kind)
            if r.kind == "external_id":
                entry.update(externalId=True, unique=True)
            objects.setdefault(r.object, {})[r.name] = entry
        elif r.kind == "property":
            kind = r.type.removeprefix("mapped:")
            kind = {"picklist": "enumeration", "integer": "number", "email": "string",
                    "country": "string", "phone": "string", "url": "string"}.get(kind, kind)
            properties[r.name] = {"type": "enumeration" if values else kind,
                                  "options": values, "read_only": False}
        elif r.kind == "list":
            lists[r.name] = {"id": "7", "processing_type": "MANUAL"}
    return {"salesforce": {"api_version": "59.0", "versions": ["58.0", "59.0"],
                           "objects": objects, "limits": {"max": 1000, "remaining": 900},
                           "budget_share": 0.2},
            "hubspot": {"properties": properties, "groups": ["syncagent"], "lists": lists,
                        "scopes_missing": {}, "events": True}}


def _row(rows: list[Row], key: str) -> Row:
    return next(r for r in rows if r.key == key)


def test_an_org_and_portal_with_everything_give_only_ok_rows(reqs: list[Requirement]) -> None:
    rows = evaluate(reqs, _complete(reqs))
    assert [r for r in rows if r.status != OK] == []
    assert len(rows) == len({r.key for r in rows})        # one row per requirement


def test_a_missing_output_field_blocks_and_a_missing_feature_field_only_warns(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    del facts["salesforce"]["objects"]["Lead"]["Lead_Score__c"]
    del facts["salesforce"]["objects"]["User"]["Territory__c"]
    rows = evaluate(reqs, facts)
    score = _row(rows, "salesforce:field:Lead.Lead_Score__c")
    territory = _row(rows, "salesforce:field:User.Territory__c")
    assert score.status == BLOCKER and "setup --apply" in score.fix
    assert territory.status == WARNING and "territory routing" in territory.detail
    assert blockers(rows) == [score]


def test_a_mistyped_mapped_field_names_its_line_and_suggests_the_real_name(
        reqs: list[Requirement], tmp_path: Path) -> None:
    text = (MAPPINGS / "fields.yaml").read_text().replace("{lead: Company}",
                                                          "{lead: Compnay}")
    mappings = _copy(tmp_path, "fields.yaml", text)
    typo_reqs = requirements(load_rules(mappings), MappingLines.read(mappings))
    facts = _complete(reqs)                              # the org has Company, not Compnay
    row = _row(evaluate(typo_reqs, facts), "salesforce:field:Lead.Compnay")
    line = text.splitlines().index(next(ln for ln in text.splitlines() if "Compnay" in ln)) + 1
    assert row.status == BLOCKER                         # written: prefer_salesforce_unless_blank
    assert row.where is not None and row.where.line == line
    assert "Did you mean Company?" in row.fix


def test_a_restricted_picklist_missing_a_track_blocks_and_names_the_track_line(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    contact = facts["salesforce"]["objects"]["Contact"]
    values = [p["value"] for p in contact["Nurture_Track__c"]["picklistValues"]]
    contact["Nurture_Track__c"] = _picklist([v for v in values if v != "Newsletter"])
    row = _row(evaluate(reqs, facts), "salesforce:field:Contact.Nurture_Track__c")
    assert row.status == BLOCKER and [v.value for v in row.missing_values] == ["Newsletter"]
    where = row.missing_values[0].where
    nurture = (MAPPINGS / "nurture.yaml").read_text().splitlines()
    assert where is not None and "Newsletter" in nurture[where.line - 1]
    contact["Nurture_Track__c"] = _picklist(values[:1], restricted=False)
    assert _row(evaluate(reqs, facts), row.key).status == OK   # unrestricted takes any value


def test_wrong_type_unwritable_and_not_unique_external_id_each_block(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    lead = facts["salesforce"]["objects"]["Lead"]
    lead["Lead_Score__c"] = _field("string")
    lead["Lead_Grade__c"] = _field("string", length=2, updateable=False, createable=False)
    lead["Syncagent_Id__c"] = _field("string", length=64, externalId=True, unique=False)
    rows = {r.key: r for r in evaluate(reqs, facts)}
    assert "expected number" in rows["salesforce:field:Lead.Lead_Score__c"].detail
    assert "cannot edit" in rows["salesforce:field:Lead.Lead_Grade__c"].detail
    assert "unique" in rows["salesforce:field:Lead.Syncagent_Id__c"].detail
    assert all(rows[k].status == BLOCKER for k in (
        "salesforce:field:Lead.Lead_Score__c", "salesforce:field:Lead.Lead_Grade__c",
        "salesforce:field:Lead.Syncagent_Id__c"))


def test_scopes_lists_and_events_block_or_warn_by_what_they_stop(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    hs = facts["hubspot"]
    hs["scopes_missing"] = {"crm.objects.contacts.write": "403", "crm.lists.write": "403"}
    hs["lists"]["Newsletter"]["processing_type"] = "DYNAMIC"
    hs["events"], hs["events_detail"] = False, "not available at this portal's tier"
    rows = {r.key: r for r in evaluate(reqs, facts)}
    assert rows["hubspot:scope:crm.objects.contacts.write"].status == BLOCKER
    assert rows["hubspot:scope:crm.lists.write"].status == WARNING
    assert rows["hubspot:list:Newsletter"].status == WARNING
    assert "DYNAMIC" in rows["hubspot:list:Newsletter"].detail
    assert rows["hubspot:events"].status == WARNING


def test_a_failed_login_blocks_and_leaves_that_systems_rows_unchecked(
        reqs: list[Requirement]) -> None:
    facts = _complete(reqs)
    facts["salesforce"] = {"error": "salesforce login refused (jwt): invalid_grant",
                           "error_hint": "Check the connected app."}
    rows = evaluate(reqs, facts)
    login = _row(rows, "salesforce:login")
    assert login.status == BLOCKER and login.fix == "Check the connected app."
    assert all("not checked" in r.detail for r in rows
               if r.system == "salesforce" and r.key != "salesforce:login")
    assert all(r.status == OK for r in rows if r.system == "hubspot")


def _copy(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / "mappings"
    folder.mkdir()
    for source in MAPPINGS.glob("*.yaml"):
        (folder / source.name).write_text(source.read_text())
    (folder / name).write_text(text)
    return folder


def test_enumerations_that_would_refuse_what_the_agent_writes_are_named(
        reqs: list[Requirement], tmp_path: Path) -> None:
    """A number mapped into an enumeration without `ranges:`, and a Lead Status value no
    translation turns into an hs_lead_status option: either fails every update carrying it."""
    fields = (MAPPINGS / "fields.yaml").read_text()
    without = fields[:fields.index("    ranges:\n")] + fields[fields.index("  - name: annual"):]
    mappings = _copy(tmp_path, "fields.yaml", without)
    reqs = requirements(load_rules(mappings), MappingLines.read(mappings))
    facts = _complete(reqs)
    facts["salesforce"]["objects"]["Lead"]["Status"] = _picklist(
        ["Open - Not Contacted", "Working - Contacted", "Closed - Not Converted", "Nurturing"])
    facts["hubspot"]["properties"]["numberofemployees"] = {
        "type": "enumeration", "options": ["1-5", "5-25", "25-50"], "read_only": False}
    rows = {r.key: r for r in evaluate(reqs, facts)}
    status = rows["hubspot:property:hs_lead_status"]
    assert status.status == WARNING and "'Nurturing'" in status.detail
    assert "'Working - Contacted'" not in status.detail          # translated to IN_PROGRESS
    assert "'Closed - Not Converted'" not in status.detail       # translated to UNQUALIFIED
    employees = rows["hubspot:property:numberofemployees"]
    assert employees.status == WARNING and "enumeration" in employees.detail
    assert employees.where is not None and "ranges:" in employees.detail
    assert blockers(list(rows.values())) == []


def test_range_options_the_property_lacks_block_and_name_their_lines(
        reqs: list[Requirement]) -> None:
    """The shipped employees ranges write HubSpot options: each one the portal lacks would
    be refused, so it blocks, naming the line of its range."""
    facts = _complete(reqs)
    prop = {"type": "enumeration", "read_only": False,
            "options": ["1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+"]}
    facts["hubspot"]["properties"]["numberofemployees"] = prop
    ok = {r.key: r for r in evaluate(reqs, facts)}["hubspot:property:numberofemployees"]
    assert ok.status == OK and "7 option(s)" in ok.detail
    facts["hubspot"]["properties"]["numberofemployees"] = {**prop, "options": ["1-5", "5-25"]}
    row = {r.key: r for r in evaluate(reqs, facts)}["hubspot:property:numberofemployees"]
    assert row.status == BLOCKER and [v.value for v in row.missing_values] == [
        "25-50", "50-100", "100-500", "500-1000", "1000+"]
    lines = (MAPPINGS / "fields.yaml").read_text().splitlines()
    for value in row.missing_values:
        assert value.where is not None and f'"{value.value}"' in lines[value.where.line - 1]
    assert "change the ranges" in row.fix
    facts["hubspot"]["properties"]["numberofemployees"] = {"type": "number", "read_only": False}
    row = {r.key: r for r in evaluate(reqs, facts)}["hubspot:property:numberofemployees"]
    assert row.status == BLOCKER and "expected ranges" in row.detail
