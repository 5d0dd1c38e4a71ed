"""The Metadata API subset set-up needs, driven by simple-salesforce's own ``sf.mdapi``.

``sf.mdapi`` is a zeep client with its own requests session: it trusts the sandbox CA through
``REQUESTS_CA_BUNDLE`` (set per test), as it would trust a corporate CA bundle.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from syncagent.sandbox.salesforce import sandbox_session
from syncagent.sandbox.server import RunningSandbox
from tests.sandbox.conftest import fresh_org


@pytest.fixture(scope="module")
def new_org() -> Iterator[RunningSandbox]:
    yield from fresh_org(leads=30, seed=31)


@pytest.fixture
def sf(new_org: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
    new_org.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", new_org.ca_cert)
    return Salesforce(instance_url=new_org.url, session_id=new_org.info["salesforce"][
        "session_id"], session=sandbox_session(new_org.url, new_org.ca_cert))


def picklist(sf: Salesforce, full_name: str, values: list[str], restricted: bool = True) -> Any:
    md = sf.mdapi
    return md.CustomField(
        fullName=full_name, label=full_name.split(".")[1].removesuffix("__c"),
        type="Picklist", valueSet=md.ValueSet(
            restricted=restricted, valueSetDefinition=md.ValueSetValuesDefinition(
                sorted=False, value=[md.CustomValue(fullName=v, default=False, label=v)
                                     for v in values])))


def grant(sf: Salesforce, *fields: str, editable: bool = True) -> str:
    """Upsert a permission set granting the fields and assign it to the integration user."""
    md = sf.mdapi
    md.PermissionSet.upsert([md.PermissionSet(
        fullName="Syncagent_Setup", label="syncagent set-up", fieldPermissions=[
            md.PermissionSetFieldPermissions(field=f, readable=True, editable=editable)
            for f in fields])])
    permset = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'Syncagent_Setup'")
    user = sf.query("SELECT Id FROM User WHERE Username LIKE 'agent@%'")["records"][0]["Id"]
    existing = sf.query(f"SELECT Id FROM PermissionSetAssignment WHERE AssigneeId = '{user}'")
    if not existing["totalSize"]:
        sf.PermissionSetAssignment.create({"AssigneeId": user, "PermissionSetId":
                                           permset["records"][0]["Id"]})
    return str(permset["records"][0]["Id"])


def described(sf: Salesforce, sobject: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}


def test_a_created_field_is_invisible_until_a_permission_set_grants_it(sf: Salesforce) -> None:
    md = sf.mdapi
    md.CustomField.create([
        picklist(sf, "Lead.Segment__c", ["sales-now", "leave"]),
        md.CustomField(fullName="Lead.Lead_Score__c", label="Lead Score", type="Number",
                       precision=18, scale=0)])
    assert "Segment__c" not in described(sf, "Lead")     # no field-level security yet
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT Id, Segment__c FROM Lead")
    grant(sf, "Lead.Segment__c", "Lead.Lead_Score__c")
    fields = described(sf, "Lead")
    segment = fields["Segment__c"]
    assert segment["restrictedPicklist"] and segment["updateable"] and segment["createable"]
    assert [p["value"] for p in segment["picklistValues"]] == ["sales-now", "leave"]
    assert fields["Lead_Score__c"]["type"] == "double"
    rows = sf.query_all("SELECT Id, Segment__c, Lead_Score__c FROM Lead")["records"]
    assert rows and all(r["Segment__c"] is None and r["Lead_Score__c"] is None for r in rows)


def test_read_returns_what_was_created_and_nothing_for_an_unknown_name(sf: Salesforce) -> None:
    md = sf.mdapi
    md.CustomField.create([md.CustomField(
        fullName="Lead.Syncagent_Id__c", label="syncagent Id", type="Text", length=64,
        externalId=True, unique=True)])
    found = md.CustomField.read(["Lead.Syncagent_Id__c"])
    assert (found.fullName, found.type, found.length, found.externalId, found.unique) == (
        "Lead.Syncagent_Id__c", "Text", 64, True, True)
    assert md.CustomField.read(["Lead.Never_Made__c"]).fullName is None
    both = md.CustomField.read(["Lead.Syncagent_Id__c", "Contact.Syncagent_Id__c"])
    assert [r.fullName for r in both] == ["Lead.Syncagent_Id__c", None]


def test_create_refuses_a_duplicate_upsert_changes_picklist_values(sf: Salesforce) -> None:
    md = sf.mdapi
    md.CustomField.create([picklist(sf, "Lead.Nurture_Track__c", ["Newsletter"])])
    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        md.CustomField.create([picklist(sf, "Lead.Nurture_Track__c", ["Newsletter"])])
    md.CustomField.upsert([picklist(sf, "Lead.Nurture_Track__c", ["Newsletter", "Re-engage"])])
    grant(sf, "Lead.Nurture_Track__c")
    values = described(sf, "Lead")["Nurture_Track__c"]["picklistValues"]
    assert [v["value"] for v in values] == ["Newsletter", "Re-engage"]
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    assert sf.Lead.update(lead, {"Nurture_Track__c": "Re-engage"}) == 204
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.update(lead, {"Nurture_Track__c": "Webinar Series"})
    assert caught.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_bad_components_fail_alone_with_their_reasons(sf: Salesforce) -> None:
    md = sf.mdapi
    with pytest.raises(Exception) as caught:
        md.CustomField.create([
            md.CustomField(fullName="Lead.No_Length__c", label="x", type="Text"),
            md.CustomField(fullName="Lead.Fine__c", label="Fine", type="Checkbox",
                           defaultValue="false"),
            md.CustomField(fullName="Nothing.Field__c", label="x", type="Text", length=5)])
    text = str(caught.value)
    assert "Lead.No_Length__c: (FIELD_INTEGRITY_EXCEPTION" in text
    assert "Nothing.Field__c: (INVALID_CROSS_REFERENCE_KEY" in text
    assert "Lead.Fine__c" not in text
    assert md.CustomField.read(["Lead.Fine__c"]).type == "Checkbox"


def test_a_read_only_grant_makes_the_field_neither_createable_nor_updateable(
        sf: Salesforce) -> None:
    md = sf.mdapi
    md.CustomField.create([md.CustomField(fullName="User.Territory__c", label="Territory",
                                          type="Text", length=80)])
    grant(sf, "User.Territory__c", editable=False)
    territory = described(sf, "User")["Territory__c"]
    assert not territory["updateable"] and not territory["createable"]
    user = sf.query("SELECT Id FROM User LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.User.update(user, {"Territory__c": "EMEA"})
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert md.PermissionSet.read(["Syncagent_Setup"]).fieldPermissions[0].editable is False


def test_a_second_assignment_of_the_same_permission_set_is_a_duplicate(sf: Salesforce) -> None:
    permset = grant(sf)
    user = sf.query("SELECT Id FROM User WHERE Username LIKE 'agent@%'")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.PermissionSetAssignment.create({"AssigneeId": user, "PermissionSetId": permset})
    assert caught.value.content[0]["errorCode"] == "DUPLICATE_VALUE"


def test_components_of_two_types_in_one_call_are_refused(sf: Salesforce) -> None:
    md = sf.mdapi
    with pytest.raises(Exception, match="same type") as caught:
        md.CustomField.create([
            md.CustomField(fullName="Lead.A__c", label="A", type="Text", length=5),
            md.PermissionSet(fullName="Mixed", label="Mixed")])
    assert type(caught.value).__name__ == "Fault"     # zeep's SOAP fault
    assert md.CustomField.read(["Lead.A__c"]).fullName is None


def test_metadata_calls_need_a_live_session(new_org: RunningSandbox,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", new_org.ca_cert)
    sf = Salesforce(instance_url=new_org.url, session_id="00Dbogus!session",
                    session=sandbox_session(new_org.url, new_org.ca_cert))
    with pytest.raises(Exception, match="INVALID_SESSION_ID") as caught:
        sf.mdapi.CustomField.read(["Lead.Segment__c"])
    assert type(caught.value).__name__ == "Fault"     # a SOAP fault, not a transport error


MD_XMLNS = 'xmlns="http://soap.sforce.com/2006/04/metadata"'


def package(tmp_path: Path, fields: str, permission_set: str) -> Path:
    """A Metadata API format zip: package.xml, objects/Lead.object, one permission set."""
    path = tmp_path / "package.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("package.xml", f'<Package {MD_XMLNS}><types><members>*</members>'
                         '<name>CustomField</name></types><types><members>*</members>'
                         '<name>PermissionSet</name></types><version>59.0</version></Package>')
        archive.writestr("objects/Lead.object", f"<CustomObject {MD_XMLNS}>{fields}"
                         "</CustomObject>")
        archive.writestr("permissionsets/Syncagent_Pkg.permissionset",
                         f"<PermissionSet {MD_XMLNS}><label>pkg</label>{permission_set}"
                         "</PermissionSet>")
    return path


SCORE = ("<fields><fullName>Lead_Score__c</fullName><label>Lead Score</label>"
         "<precision>18</precision><scale>0</scale><type>Number</type></fields>")
SEGMENT = ("<fields><fullName>Segment__c</fullName><label>Segment</label><type>Picklist</type>"
           "<valueSet><restricted>true</restricted><valueSetDefinition><sorted>false</sorted>"
           "<value><fullName>leave</fullName><default>false</default><label>leave</label>"
           "</value></valueSetDefinition></valueSet></fields>")
def grants(*names: str) -> str:
    return "".join(f"<fieldPermissions><editable>true</editable><field>Lead.{name}</field>"
                   "<readable>true</readable></fieldPermissions>" for name in names)


def test_a_deployed_package_creates_its_fields_and_permission_set(
        sf: Salesforce, tmp_path: Path) -> None:
    started = sf.deploy(str(package(tmp_path, SCORE + SEGMENT,
                                    grants("Lead_Score__c", "Segment__c"))), sandbox=True)
    assert started["state"] == "Queued" and started["asyncId"]
    status = sf.checkDeployStatus(started["asyncId"])
    assert status["state"] == "Succeeded", status
    assert status["deployment_detail"]["deployed_count"] == "3"
    permset = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'Syncagent_Pkg'")
    user = sf.query("SELECT Id FROM User WHERE Username LIKE 'agent@%'")["records"][0]["Id"]
    sf.PermissionSetAssignment.create({"AssigneeId": user, "PermissionSetId":
                                       permset["records"][0]["Id"]})
    fields = described(sf, "Lead")
    assert fields["Segment__c"]["restrictedPicklist"] and fields["Lead_Score__c"]["updateable"]


def test_a_failing_component_rolls_a_production_deploy_back(
        sf: Salesforce, tmp_path: Path) -> None:
    broken = "<fields><fullName>No_Type__c</fullName><label>x</label></fields>"
    started = sf.deploy(str(package(tmp_path, SCORE + broken, grants("Lead_Score__c"))),
                        sandbox=False)
    status = sf.checkDeployStatus(started["asyncId"])
    assert status["state"] == "Failed"
    errors = status["deployment_detail"]["errors"]
    assert [e["file"] for e in errors] == ["objects/Lead.object"]
    assert "FIELD_INTEGRITY_EXCEPTION" in errors[0]["message"]
    assert sf.mdapi.CustomField.read(["Lead.Lead_Score__c"]).fullName is None
    assert sf.query("SELECT COUNT() FROM PermissionSet WHERE Name = 'Syncagent_Pkg'")[
        "totalSize"] == 0


def _status_values(sf: Salesforce) -> list[str]:
    return [p["value"] for p in described(sf, "Lead")["Status"]["picklistValues"]]


def test_lead_status_values_are_added_through_the_standard_value_set(sf: Salesforce) -> None:
    """A new org has the standard Lead Status values; updateMetadata on StandardValueSet
    LeadStatus adds the team's, and leads may then take them (restricted picklist)."""
    md = sf.mdapi
    current = md.StandardValueSet.read(["LeadStatus"])
    assert current.fullName == "LeadStatus"
    assert [(v.fullName, v.converted) for v in current.standardValue] == [
        ("Open - Not Contacted", False), ("Working - Contacted", False),
        ("Closed - Converted", True), ("Closed - Not Converted", False)]
    lead = sf.query("SELECT Id FROM Lead WHERE IsConverted = false LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Lead.update(lead, {"Status": "Accepted"})
    values = [md.StandardValue(fullName=v.fullName, label=v.label, default=v.default,
                               converted=v.converted) for v in current.standardValue]
    values.append(md.StandardValue(fullName="Accepted", label="Accepted", default=False,
                                   converted=False))
    md.StandardValueSet.update([md.StandardValueSet(fullName="LeadStatus", sorted=False,
                                                    standardValue=values)])
    assert _status_values(sf)[-1] == "Accepted"
    assert sf.Lead.update(lead, {"Status": "Accepted"}) == 204


def test_a_standard_value_set_is_never_created_never_loses_values_and_keeps_a_converted_one(
        sf: Salesforce) -> None:
    md = sf.mdapi

    def value_set(*names: str, converted: str = "") -> Any:
        return md.StandardValueSet(fullName="LeadStatus", sorted=False, standardValue=[
            md.StandardValue(fullName=n, label=n, default=False, converted=n == converted)
            for n in names])
    standard = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                "Closed - Not Converted")
    with pytest.raises(Exception, match="DUPLICATE_DEVELOPER_NAME"):
        md.StandardValueSet.create([value_set(*standard, converted="Closed - Converted")])
    with pytest.raises(Exception, match="does not remove values"):
        md.StandardValueSet.update([value_set(*standard[:3], converted="Closed - Converted")])
    with pytest.raises(Exception, match="converted status"):
        md.StandardValueSet.update([value_set(*standard)])
    with pytest.raises(Exception, match="INVALID_CROSS_REFERENCE_KEY"):
        md.StandardValueSet.update([md.StandardValueSet(
            fullName="CaseOrigin", sorted=False, standardValue=[md.StandardValue(
                fullName="Web", label="Web", default=False)])])
    assert _status_values(sf) == list(standard)
    assert md.StandardValueSet.read(["CaseOrigin"]).fullName is None


def test_a_deployed_standard_value_set_adds_lead_status_values_and_rolls_back_with_the_rest(
        sf: Salesforce, tmp_path: Path) -> None:
    statuses = "".join(
        f"<standardValue><converted>{str(n == 'Closed - Converted').lower()}</converted>"
        f"<default>false</default><fullName>{n}</fullName><label>{n}</label></standardValue>"
        for n in ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                  "Closed - Not Converted", "Recycled"))

    def deploy(fields: str) -> dict[str, Any]:
        path = package(tmp_path, fields, grants("Lead_Score__c"))
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("standardValueSets/LeadStatus.standardValueSet",
                             f"<StandardValueSet {MD_XMLNS}><sorted>false</sorted>{statuses}"
                             "</StandardValueSet>")
        return dict(sf.checkDeployStatus(sf.deploy(str(path), sandbox=False)["asyncId"]))

    broken = "<fields><fullName>No_Type__c</fullName><label>x</label></fields>"
    assert deploy(SCORE + broken)["state"] == "Failed"
    assert "Recycled" not in _status_values(sf)            # rolled back with the field
    assert deploy(SCORE)["state"] == "Succeeded"
    assert _status_values(sf)[-1] == "Recycled"
