"""The emulated org's data model: objects, fields and their describe() output.

Field flags follow real Salesforce: system fields are neither createable nor updateable,
``Name`` on Lead/Contact/User is computed, ``IsConverted`` can be set on insert only, and the
agent's custom fields exist on both Lead and Contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from syncagent.sandbox.shipped import shipped

KEY_PREFIXES = {
    "Lead": "00Q", "Contact": "003", "Account": "001", "User": "005", "Task": "00T",
    "Event": "00U", "Campaign": "701", "CampaignMember": "00v",
    "PermissionSet": "0PS", "PermissionSetAssignment": "0Pa",
}
LABELS = {
    "Lead": ("Lead", "Leads"), "Contact": ("Contact", "Contacts"),
    "Account": ("Account", "Accounts"), "User": ("User", "Users"), "Task": ("Task", "Tasks"),
    "Event": ("Event", "Events"), "Campaign": ("Campaign", "Campaigns"),
    "CampaignMember": ("Campaign Member", "Campaign Members"),
    "PermissionSet": ("Permission Set", "Permission Sets"),
    "PermissionSetAssignment": ("Permission Set Assignment", "Permission Set Assignments"),
}
STRING_TYPES = frozenset({"string", "textarea", "picklist", "multipicklist", "email", "phone",
                          "url", "combobox", "encryptedstring"})
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})
SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "double": "xsd:double",
    "currency": "xsd:double", "percent": "xsd:double", "int": "xsd:int",
    "datetime": "xsd:dateTime", "date": "xsd:date",
}

# The agent's values, as set-up creates them from the shipped mapping files; "None" is a
# value a rep may pick that no track has.
LIFECYCLE_STAGES = shipped().stages
SEGMENTS = shipped().segments
NURTURE_TRACKS = (*shipped().nurture_tracks, "None")
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Accepted", "Qualified",
                 "Unqualified", "Recycled")
# The LeadStatus standard value set of a new org, before an admin adds the team's own values.
STANDARD_LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                          "Closed - Not Converted")
DISQUALIFIED_REASONS = ("No Budget", "No Authority", "Timing", "Competitor", "Not a Fit",
                        "Bad Data")
INDUSTRIES = ("Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals",
              "Communications", "Construction", "Consulting", "Education", "Electronics",
              "Energy", "Engineering", "Entertainment", "Environmental", "Finance",
              "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance",
              "Machinery", "Manufacturing", "Media", "Not For Profit", "Recreation", "Retail",
              "Shipping", "Technology", "Telecommunications", "Transportation", "Utilities",
              "Other")
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other",
                "Advertisement", "Employee Referral", "External Referral", "Trade Show",
                "Webinar", "Word of mouth")


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of an sObject, with the flags describe() reports."""

    name: str
    type: str
    label: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False            # not nillable, no default: REQUIRED_FIELD_MISSING
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: Any = None
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    custom: bool = False
    precision: int = 0
    scale: int = 0

    @property
    def is_long_text(self) -> bool:
        return self.type == "textarea" and self.length > 255


def _s(name: str, length: int, label: str | None = None, **kw: Any) -> FieldDef:
    return FieldDef(name, "string", label or name, length=length, **kw)


def _pick(name: str, values: tuple[str, ...], label: str | None = None, **kw: Any) -> FieldDef:
    return FieldDef(name, "picklist", label or name, length=255, picklist=values, **kw)


def _ref(name: str, to: tuple[str, ...], rel: str, label: str | None = None,
         **kw: Any) -> FieldDef:
    return FieldDef(name, "reference", label or name, length=18, reference_to=to,
                    relationship=rel, **kw)


def _ro(f: FieldDef) -> FieldDef:
    return replace(f, createable=False, updateable=False)


def _system_fields(deletable: bool = True) -> list[FieldDef]:
    fields = [FieldDef("Id", "id", "Record ID", length=18, createable=False, updateable=False,
                       nillable=False)]
    if deletable:
        fields.append(FieldDef("IsDeleted", "boolean", "Deleted", createable=False,
                               updateable=False, nillable=False, default=False))
    fields += [
        FieldDef("CreatedDate", "datetime", "Created Date", createable=False, updateable=False,
                 nillable=False),
        _ro(_ref("CreatedById", ("User",), "CreatedBy", "Created By ID", nillable=False)),
        FieldDef("LastModifiedDate", "datetime", "Last Modified Date", createable=False,
                 updateable=False, nillable=False),
        _ro(_ref("LastModifiedById", ("User",), "LastModifiedBy", "Last Modified By ID",
                 nillable=False)),
        FieldDef("SystemModstamp", "datetime", "System Modstamp", createable=False,
                 updateable=False, nillable=False),
    ]
    return fields


def _agent_fields() -> list[FieldDef]:
    """The custom fields the agent writes by default, on Lead and Contact."""
    return [
        _s("Lead_Grade__c", 2, "Lead Grade", custom=True),
        FieldDef("Lead_Score__c", "double", "Lead Score", custom=True, precision=18, scale=0),
        _pick("Lifecycle_Stage__c", LIFECYCLE_STAGES, "Lifecycle Stage", restricted=True,
              custom=True),
        _pick("Nurture_Track__c", NURTURE_TRACKS, "Nurture Track", custom=True),
        _pick("Segment__c", SEGMENTS, "Segment", custom=True),
        FieldDef("Score_Reasons__c", "textarea", "Score Reasons", length=32768, custom=True),
        FieldDef("MQL_Date__c", "datetime", "MQL Date", custom=True),
        # The agent's own key on records it creates: an upsert on it makes a retried create
        # (after a timeout whose request did land) update instead of duplicating.
        _s("Syncagent_Id__c", 64, "syncagent Id", external_id=True, unique=True, custom=True),
    ]


def _person_fields() -> list[FieldDef]:
    return [
        _s("LastName", 80, "Last Name", required=True),
        _s("FirstName", 40, "First Name"),
        _pick("Salutation", ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof."), "Salutation"),
        _ro(_s("Name", 121, "Full Name")),
        _s("Title", 128, "Title"),
        FieldDef("Phone", "phone", "Phone", length=40),
        FieldDef("MobilePhone", "phone", "Mobile Phone", length=40),
        FieldDef("Email", "email", "Email", length=80),
        FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out", nillable=False,
                 default=False),
        FieldDef("Description", "textarea", "Description", length=32000),
        _pick("LeadSource", LEAD_SOURCES, "Lead Source"),
    ]


def _lead() -> list[FieldDef]:
    return [
        *_system_fields(),
        _ro(_ref("MasterRecordId", ("Lead",), "MasterRecord", "Master Record ID")),
        *_person_fields(),
        _s("Company", 255, "Company", required=True),
        FieldDef("Street", "textarea", "Street", length=255),
        _s("City", 40, "City"), _s("State", 80, "State/Province"),
        _s("PostalCode", 20, "Zip/Postal Code"), _s("Country", 80, "Country"),
        FieldDef("Website", "url", "Website", length=255),
        _pick("Status", LEAD_STATUSES, "Status", restricted=True, nillable=False,
              default="Open - Not Contacted"),
        _pick("Industry", INDUSTRIES, "Industry"),
        _pick("Rating", ("Hot", "Warm", "Cold"), "Rating"),
        FieldDef("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        FieldDef("NumberOfEmployees", "int", "Employees", precision=8),
        _ref("OwnerId", ("Group", "User"), "Owner", "Owner ID", nillable=False),
        FieldDef("IsConverted", "boolean", "Converted", updateable=False, nillable=False,
                 default=False),
        _ro(FieldDef("ConvertedDate", "date", "Converted Date")),
        _ro(_ref("ConvertedAccountId", ("Account",), "ConvertedAccount",
                 "Converted Account ID")),
        _ro(_ref("ConvertedContactId", ("Contact",), "ConvertedContact",
                 "Converted Contact ID")),
        FieldDef("IsUnreadByOwner", "boolean", "Unread By Owner", nillable=False,
                 default=False),
        _ro(FieldDef("LastActivityDate", "date", "Last Activity")),
        _pick("Disqualified_Reason__c", DISQUALIFIED_REASONS, "Disqualified Reason",
              custom=True),
        *_agent_fields(),
    ]


def _contact() -> list[FieldDef]:
    return [
        *_system_fields(),
        _ro(_ref("MasterRecordId", ("Contact",), "MasterRecord", "Master Record ID")),
        _ref("AccountId", ("Account",), "Account", "Account ID"),
        *_person_fields(),
        _s("Department", 80, "Department"),
        FieldDef("MailingStreet", "textarea", "Mailing Street", length=255),
        _s("MailingCity", 40, "Mailing City"), _s("MailingState", 80, "Mailing State/Province"),
        _s("MailingPostalCode", 20, "Mailing Zip/Postal Code"),
        _s("MailingCountry", 80, "Mailing Country"),
        _ref("OwnerId", ("User",), "Owner", "Owner ID", nillable=False),
        _ro(FieldDef("LastActivityDate", "date", "Last Activity")),
        *_agent_fields(),
    ]


def _account() -> list[FieldDef]:
    return [
        *_system_fields(),
        _ro(_ref("MasterRecordId", ("Account",), "MasterRecord", "Master Record ID")),
        _s("Name", 255, "Account Name", required=True),
        _pick("Type", ("Prospect", "Customer - Direct", "Customer - Channel",
                       "Channel Partner / Reseller", "Installation Partner",
                       "Technology Partner", "Other"), "Account Type"),
        _ref("ParentId", ("Account",), "Parent", "Parent Account ID"),
        FieldDef("Website", "url", "Website", length=255),
        FieldDef("Phone", "phone", "Account Phone", length=40),
        _pick("Industry", INDUSTRIES, "Industry"),
        FieldDef("AnnualRevenue", "currency", "Annual Revenue", precision=18, scale=0),
        FieldDef("NumberOfEmployees", "int", "Employees", precision=8),
        FieldDef("BillingStreet", "textarea", "Billing Street", length=255),
        _s("BillingCity", 40, "Billing City"), _s("BillingState", 80, "Billing State/Province"),
        _s("BillingPostalCode", 20, "Billing Zip/Postal Code"),
        _s("BillingCountry", 80, "Billing Country"),
        FieldDef("Description", "textarea", "Account Description", length=32000),
        _ref("OwnerId", ("User",), "Owner", "Owner ID", nillable=False),
    ]


def _user() -> list[FieldDef]:
    return [
        *_system_fields(deletable=False),
        _s("Username", 80, "Username", required=True, unique=True),
        _s("LastName", 80, "Last Name", required=True),
        _s("FirstName", 40, "First Name"),
        _ro(_s("Name", 121, "Full Name")),
        _s("Alias", 8, "Alias"),
        FieldDef("Email", "email", "Email", length=128, required=True),
        _s("Title", 80, "Title"),
        _s("Department", 80, "Department"),
        FieldDef("IsActive", "boolean", "Active", nillable=False, default=True),
        _ref("ManagerId", ("User",), "Manager", "Manager ID"),
        _ro(_pick("UserType", ("Standard", "PowerPartner", "CspLitePortal", "CustomerSuccess",
                               "PowerCustomerSuccess", "CsnOnly", "Guest"), "User Type",
                  default="Standard")),
        _s("Territory__c", 80, "Territory", custom=True),
        FieldDef("Out_Of_Office__c", "boolean", "Out Of Office", custom=True, nillable=False,
                 default=False),
    ]


_ACTIVITY_COMMON = (
    ("WhoId", ("Contact", "Lead"), "Who", "Name ID"),
    ("WhatId", ("Account", "Campaign"), "What", "Related To ID"),
)


def _activity_refs() -> list[FieldDef]:
    return [_ref(n, to, rel, label) for n, to, rel, label in _ACTIVITY_COMMON]


def _task() -> list[FieldDef]:
    return [
        *_system_fields(),
        *_activity_refs(),
        FieldDef("Subject", "combobox", "Subject", length=255,
                 picklist=("Call", "Send Letter", "Send Quote", "Other")),
        FieldDef("ActivityDate", "date", "Due Date Only"),
        _pick("Status", ("Not Started", "In Progress", "Completed", "Waiting on someone else",
                         "Deferred"), "Status", restricted=True, nillable=False,
              default="Not Started"),
        _pick("Priority", ("High", "Normal", "Low"), "Priority", restricted=True,
              nillable=False, default="Normal"),
        _ref("OwnerId", ("Group", "User"), "Owner", "Assigned To ID", nillable=False),
        FieldDef("Description", "textarea", "Description", length=32000),
        _pick("Type", ("Call", "Email", "Meeting", "Other"), "Type"),
        _ro(FieldDef("IsClosed", "boolean", "Closed", nillable=False, default=False)),
        _s("CallDisposition", 255, "Call Result"),
        FieldDef("CallDurationInSeconds", "int", "Call Duration", precision=9),
        _pick("CallType", ("Internal", "Inbound", "Outbound"), "Call Type", restricted=True),
        _pick("TaskSubtype", ("Task", "Email", "ListEmail", "Cadence", "Call"), "Task Subtype",
              restricted=True, updateable=False),
        _ro(FieldDef("CompletedDateTime", "datetime", "Completed Date/Time")),
        _s("Idempotency_Key__c", 80, "Idempotency Key", external_id=True, unique=True,
           custom=True),
    ]


def _event() -> list[FieldDef]:
    return [
        *_system_fields(),
        *_activity_refs(),
        FieldDef("Subject", "combobox", "Subject", length=255,
                 picklist=("Call", "Email", "Meeting", "Send Letter/Quote", "Other")),
        _s("Location", 255, "Location"),
        FieldDef("ActivityDate", "date", "Due Date Only"),
        FieldDef("ActivityDateTime", "datetime", "Due Date Time"),
        FieldDef("StartDateTime", "datetime", "Start Date Time"),
        FieldDef("EndDateTime", "datetime", "End Date Time"),
        FieldDef("DurationInMinutes", "int", "Duration", precision=8),
        _ref("OwnerId", ("Group", "User"), "Owner", "Assigned To ID", nillable=False),
        FieldDef("Description", "textarea", "Description", length=32000),
        _pick("Type", ("Call", "Email", "Meeting", "Demo", "Other"), "Type"),
        _pick("ShowAs", ("Busy", "OutOfOffice", "Free"), "Show Time As", default="Busy"),
    ]


def _campaign() -> list[FieldDef]:
    return [
        *_system_fields(),
        _s("Name", 80, "Name", required=True),
        _pick("Type", ("Conference", "Webinar", "Trade Show", "Public Relations", "Partners",
                       "Referral Program", "Advertisement", "Banner Ads", "Direct Mail",
                       "Email", "Telemarketing", "Content", "Other"), "Type"),
        _pick("Status", ("Planned", "In Progress", "Completed", "Aborted"), "Status"),
        FieldDef("StartDate", "date", "Start Date"),
        FieldDef("EndDate", "date", "End Date"),
        FieldDef("IsActive", "boolean", "Active", nillable=False, default=False),
        _ref("ParentId", ("Campaign",), "Parent", "Parent Campaign ID"),
        _ref("OwnerId", ("User",), "Owner", "Owner ID", nillable=False),
        FieldDef("Description", "textarea", "Description", length=32000),
    ]


def _campaign_member() -> list[FieldDef]:
    return [
        *_system_fields(),
        _ref("CampaignId", ("Campaign",), "Campaign", "Campaign ID", required=True,
             updateable=False),
        _ref("LeadId", ("Lead",), "Lead", "Lead ID", updateable=False),
        _ref("ContactId", ("Contact",), "Contact", "Contact ID", updateable=False),
        _pick("Status", ("Sent", "Responded", "Registered", "Attended"), "Status",
              default="Sent"),
        _ro(FieldDef("HasResponded", "boolean", "Responded", nillable=False, default=False)),
        _ro(FieldDef("FirstRespondedDate", "date", "First Responded Date")),
    ]


def _permission_set() -> list[FieldDef]:
    return [
        *_system_fields(deletable=False),
        _s("Name", 80, "Name", required=True, unique=True),
        _s("Label", 80, "Label", required=True),
        FieldDef("Description", "textarea", "Description", length=255),
        _ro(FieldDef("IsOwnedByProfile", "boolean", "Is Owned By Profile", nillable=False,
                     default=False)),
    ]


def _permission_set_assignment() -> list[FieldDef]:
    return [
        *_system_fields(deletable=False),
        _ref("AssigneeId", ("User",), "Assignee", "Assignee ID", required=True,
             updateable=False),
        _ref("PermissionSetId", ("PermissionSet",), "PermissionSet", "Permission Set ID",
             required=True, updateable=False),
    ]


@dataclass
class SObjectDef:
    """An object and its fields; ``by_lower`` resolves the case-insensitive names SOQL allows."""

    name: str
    fields: dict[str, FieldDef]
    by_lower: dict[str, FieldDef] = field(init=False)
    relationships: dict[str, FieldDef] = field(init=False)   # lower relationship name -> field

    def __post_init__(self) -> None:
        self.by_lower = {n.lower(): f for n, f in self.fields.items()}
        self.relationships = {f.relationship.lower(): f for f in self.fields.values()
                              if f.relationship}

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.name]

    @property
    def deletable(self) -> bool:
        return "IsDeleted" in self.fields

    def field(self, name: str) -> FieldDef | None:
        return self.by_lower.get(name.lower())


OBJECTS: dict[str, SObjectDef] = {
    name: SObjectDef(name, {f.name: f for f in builder()})
    for name, builder in (("Lead", _lead), ("Contact", _contact), ("Account", _account),
                          ("User", _user), ("Task", _task), ("Event", _event),
                          ("Campaign", _campaign), ("CampaignMember", _campaign_member),
                          ("PermissionSet", _permission_set),
                          ("PermissionSetAssignment", _permission_set_assignment))
}
OBJECTS_LOWER = {name.lower(): obj for name, obj in OBJECTS.items()}
PREFIX_TO_OBJECT = {prefix: name for name, prefix in KEY_PREFIXES.items()}


def sobject(name: str) -> SObjectDef | None:
    """The object definition for a case-insensitive name, or None."""
    return OBJECTS_LOWER.get(name.lower())


def object_urls(name: str, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def describe_global_entry(obj: SObjectDef, version: str) -> dict[str, Any]:
    singular, plural = LABELS[obj.name]
    return {
        "activateable": False, "createable": True, "custom": False, "customSetting": False,
        "deletable": obj.deletable, "deprecatedAndHidden": False, "feedEnabled": False,
        "hasSubtypes": False, "isSubtype": False, "keyPrefix": obj.key_prefix,
        "label": singular, "labelPlural": plural, "layoutable": True, "mergeable":
        obj.name in ("Lead", "Contact", "Account"), "mruEnabled": True, "name": obj.name,
        "queryable": True, "replicateable": True, "retrieveable": True, "searchable": True,
        "triggerable": True, "undeletable": obj.deletable, "updateable": True,
        "urls": object_urls(obj.name, version),
    }


def describe_field(f: FieldDef) -> dict[str, Any]:
    """One entry of describe()['fields'], with the flags clients read."""
    is_text = f.type in STRING_TYPES
    return {
        "aggregatable": not f.is_long_text, "autoNumber": False,
        "byteLength": f.length * 3 if is_text or f.type in ID_TYPES else 0,
        "calculated": f.name == "Name" and not f.createable,
        "caseSensitive": False, "createable": f.createable, "custom": f.custom,
        "defaultValue": f.default if f.type != "boolean" else bool(f.default),
        "defaultedOnCreate": f.default is not None or f.name in ("OwnerId", "Id")
        or f.type == "boolean",
        "dependentPicklist": False, "digits": f.precision if f.type == "int" else 0,
        "externalId": f.external_id, "filterable": not f.is_long_text,
        "groupable": f.type not in ("double", "currency", "datetime") and not f.is_long_text,
        "idLookup": f.name == "Id" or f.external_id or f.name in ("Email", "Username"),
        "label": f.label, "length": f.length if is_text or f.type in ID_TYPES else 0,
        "name": f.name, "nameField": f.name == "Name", "nillable": f.nillable and not f.required,
        "permissionable": f.custom, "picklistValues": [
            {"active": True, "defaultValue": v == f.default, "label": v, "validFor": None,
             "value": v} for v in f.picklist],
        "polymorphicForeignKey": len(f.reference_to) > 1,
        "precision": f.precision if f.type in ("double", "currency", "percent") else 0,
        "referenceTo": list(f.reference_to), "relationshipName": f.relationship,
        "restrictedPicklist": f.restricted, "scale": f.scale,
        "soapType": SOAP_TYPES.get(f.type, "xsd:string"),
        "sortable": not f.is_long_text, "type": f.type, "unique": f.unique,
        "updateable": f.updateable,
    }


def describe_object(obj: SObjectDef, version: str) -> dict[str, Any]:
    """The body of GET /sobjects/{name}/describe."""
    body = describe_global_entry(obj, version)
    body.update({
        "actionOverrides": [], "childRelationships": [], "compactLayoutable": True,
        "fields": [describe_field(f) for f in obj.fields.values()],
        "namedLayoutInfos": [], "networkScopeFieldName": None, "recordTypeInfos": [],
        "searchLayoutable": True, "supportedScopes": [{"label": "All", "name": "everything"}],
    })
    return body
