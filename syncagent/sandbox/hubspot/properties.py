"""Property definitions of the emulated HubSpot portal, and value validation.

Values travel as strings, as in the real API. Validation problems come back as HubSpot's
per-property error dicts (``{isValid, message, error, name}``) so callers can build both the
single-call 400 and the batch 207 bodies from them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from syncagent.sandbox.shipped import shipped

CONTACT_TYPE_ID = "0-1"
OBJECT_TYPE_IDS = {"contacts": "0-1", "tasks": "0-27", "notes": "0-46", "meetings": "0-47",
                   "calls": "0-48", "emails": "0-49"}
ENGAGEMENT_TYPES = ("emails", "calls", "meetings", "notes", "tasks")
SINGULAR = {"contacts": "contact", "emails": "email", "calls": "call", "meetings": "meeting",
            "notes": "note", "tasks": "task"}
# HUBSPOT_DEFINED association type ids, engagement -> contact and back.
ASSOCIATION_TYPE_IDS = {"calls": (194, 193), "emails": (198, 197), "meetings": (200, 199),
                        "notes": (202, 201), "tasks": (204, 203)}

LIFECYCLE_STAGES = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                    "opportunity", "customer", "evangelist", "other"]
LEAD_STATUSES = ["NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
                 "CONNECTED", "BAD_TIMING"]
# Same values as the Salesforce picklists Nurture_Track__c and Segment__c (from the shipped
# mapping files), so a mapping can copy them as-is.
NURTURE_TRACKS = [*shipped().nurture_tracks, "None"]
LEAD_SEGMENTS = list(shipped().segments)
SENIORITIES = ["employee", "manager", "director", "vice_president", "executive", "owner"]
ANALYTICS_SOURCES = ["ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA",
                     "REFERRALS", "OTHER_CAMPAIGNS", "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL"]


@dataclass
class PropertyDef:
    """One property of one object type (the shape GET /crm/v3/properties returns)."""

    name: str
    label: str
    type: str                      # string, number, datetime, date, enumeration, bool
    field_type: str                # text, textarea, number, date, select, radio, checkbox, ...
    group_name: str = "contactinformation"
    options: list[str] = field(default_factory=list)
    read_only: bool = False
    hubspot_defined: bool = True
    unique: bool = False
    description: str = ""
    created_at: str = "2019-08-06T02:41:52.000Z"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "label": self.label, "type": self.type,
            "fieldType": self.field_type, "groupName": self.group_name,
            "description": self.description,
            "options": [{"label": o.replace("-", " ").title(), "value": o, "displayOrder": i,
                         "hidden": False} for i, o in enumerate(self.options)],
            "displayOrder": -1, "calculated": self.read_only and self.hubspot_defined,
            "externalOptions": False, "hasUniqueValue": self.unique, "hidden": False,
            "hubspotDefined": self.hubspot_defined, "archived": False, "formField":
            not self.read_only, "createdAt": self.created_at, "updatedAt": self.created_at,
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.read_only},
        }


def _p(name: str, type_: str = "string", field_type: str = "text", **kw: Any) -> PropertyDef:
    label = kw.pop("label", name.replace("hs_", "").replace("_", " ").title())
    return PropertyDef(name=name, label=label, type=type_, field_type=field_type, **kw)


def _common(modified: str) -> list[PropertyDef]:
    return [_p("hs_object_id", "number", "number", read_only=True, label="Record ID",
               unique=True),
            _p("hs_createdate" if modified != "lastmodifieddate" else "createdate", "datetime",
               "date", label="Create Date"),
            _p(modified, "datetime", "date", read_only=True, label="Last Modified Date"),
            _p("hubspot_owner_id", "enumeration", "select", label="Owner")]


# A contact's company size is a dropdown of ranges, not a number, in every portal (fresh or
# configured: set-up never changes a property's type), so a number written there is an
# INVALID_OPTION; the shipped fields.yaml writes the range instead (its `ranges:`).
EMPLOYEE_RANGES = ["1-5", "5-25", "25-50", "50-100", "100-500", "500-1000", "1000+"]
AGENT_GROUP = "syncagent"


def employee_range(count: int) -> str:
    """The EMPLOYEE_RANGES option a head count falls in."""
    for option in reversed(EMPLOYEE_RANGES):
        if count >= int(option.split("-")[0].rstrip("+")):
            return option
    return EMPLOYEE_RANGES[0]


#: The agent's own contact properties: they exist only where set-up has run (configured).
AGENT_PROPERTIES = ("lead_grade", "lead_score", "nurture_track", "lead_segment",
                    "score_reasons", "mql_date")
#: Created by HubSpot's own Salesforce integration, and only where it is installed.
SALESFORCE_PROPERTIES = ("salesforceleadid", "salesforcecontactid")


def contact_properties(*, fresh: bool = False, salesforce_integration: bool = True,
                       ) -> list[PropertyDef]:
    """The contact properties of a configured portal, or of a fresh one (no agent properties),
    with or without the Salesforce integration's properties."""
    props = _contact_properties()
    if fresh:
        props = [p for p in props if p.name not in AGENT_PROPERTIES]
    if not salesforce_integration:
        props = [p for p in props if p.name not in SALESFORCE_PROPERTIES]
    return props


def contact_groups(*, fresh: bool = False, salesforce_integration: bool = True,
                   ) -> dict[str, str]:
    """Property groups (name -> label) the portal starts with."""
    groups = {"contactinformation": "Contact information",
              "analyticsinformation": "Web analytics history",
              "conversioninformation": "Conversion information",
              "emailinformation": "Email information"}
    if salesforce_integration:
        groups["salesforceinformation"] = "Salesforce information"
    if not fresh:
        groups[AGENT_GROUP] = "syncagent"
    return groups


def _contact_properties() -> list[PropertyDef]:
    agent = AGENT_GROUP
    employees = _p("numberofemployees", "enumeration", "select", options=EMPLOYEE_RANGES,
                   label="Number of Employees")
    return [
        *_common("lastmodifieddate"),
        _p("email", unique=True, label="Email"), _p("firstname"), _p("lastname"),
        _p("jobtitle", label="Job Title"), _p("company"), employees,
        _p("annualrevenue", "number", "number", label="Annual Revenue"),
        _p("industry"), _p("country"), _p("state"), _p("city"),
        _p("phone", field_type="phonenumber"), _p("website"),
        _p("lifecyclestage", "enumeration", "radio", options=LIFECYCLE_STAGES,
           label="Lifecycle Stage"),
        _p("hs_lead_status", "enumeration", "radio", options=LEAD_STATUSES, label="Lead Status"),
        _p("salesforceleadid", label="Salesforce Lead ID", group_name="salesforceinformation"),
        _p("salesforcecontactid", label="Salesforce Contact ID",
           group_name="salesforceinformation"),
        _p("hs_analytics_num_page_views", "number", "number", read_only=True,
           group_name="analyticsinformation", label="Number of Pageviews"),
        _p("num_conversion_events", "number", "number", read_only=True,
           group_name="conversioninformation", label="Number of Form Submissions"),
        _p("recent_conversion_event_name", read_only=True, group_name="conversioninformation",
           label="Recent Conversion"),
        _p("hs_email_last_click_date", "datetime", "date", read_only=True,
           group_name="emailinformation", label="Last marketing email click date"),
        _p("hs_email_last_open_date", "datetime", "date", read_only=True,
           group_name="emailinformation", label="Last marketing email open date"),
        # Set by HubSpot when the contact first enters the stage (a deal made it one).
        _p("hs_lifecyclestage_opportunity_date", "datetime", "date", read_only=True,
           label="Became an Opportunity Date"),
        _p("hs_seniority", "enumeration", "select", options=SENIORITIES, label="Seniority"),
        _p("hs_analytics_source", "enumeration", "select", options=ANALYTICS_SOURCES,
           read_only=True, group_name="analyticsinformation", label="Original Source"),
        _p("hs_merged_object_ids", "enumeration", "checkbox", read_only=True,
           label="Merged Contact IDs"),
        _p("lead_grade", group_name=agent, hubspot_defined=False, label="Lead Grade"),
        _p("lead_score", "number", "number", group_name=agent, hubspot_defined=False,
           label="Lead Score"),
        _p("nurture_track", "enumeration", "select", options=NURTURE_TRACKS, group_name=agent,
           hubspot_defined=False, label="Nurture Track"),
        _p("lead_segment", "enumeration", "select", options=LEAD_SEGMENTS, group_name=agent,
           hubspot_defined=False, label="Lead Segment"),
        _p("score_reasons", field_type="textarea", group_name=agent, hubspot_defined=False,
           label="Score Reasons"),
        _p("mql_date", "datetime", "date", group_name=agent, hubspot_defined=False,
           label="MQL Date"),
    ]


def engagement_properties(kind: str) -> list[PropertyDef]:
    group = f"{SINGULAR[kind]}information"
    common = [*_common("hs_lastmodifieddate"), _p("hs_timestamp", "datetime", "date",
                                                  label="Activity date")]
    specific = {
        "emails": [_p("hs_email_subject"), _p("hs_email_text", field_type="textarea"),
                   _p("hs_email_direction", "enumeration", "select",
                      options=["EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"]),
                   _p("hs_email_status", "enumeration", "select",
                      options=["BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"])],
        "calls": [_p("hs_call_title"), _p("hs_call_body", field_type="textarea"),
                  _p("hs_call_duration", "number", "number"),
                  _p("hs_call_direction", "enumeration", "select",
                     options=["INBOUND", "OUTBOUND"]),
                  _p("hs_call_disposition"),
                  _p("hs_call_status", "enumeration", "select",
                     options=["BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED",
                              "CONNECTING", "FAILED", "IN_PROGRESS", "NO_ANSWER", "QUEUED",
                              "RINGING"])],
        "meetings": [_p("hs_meeting_title"), _p("hs_meeting_body", field_type="textarea"),
                     _p("hs_meeting_start_time", "datetime", "date"),
                     _p("hs_meeting_end_time", "datetime", "date"),
                     _p("hs_meeting_outcome", "enumeration", "select",
                        options=["SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW",
                                 "CANCELED"])],
        "notes": [_p("hs_note_body", field_type="textarea")],
        "tasks": [_p("hs_task_subject"), _p("hs_task_body", field_type="textarea"),
                  _p("hs_task_status", "enumeration", "select",
                     options=["NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED",
                              "DEFERRED"]),
                  _p("hs_task_priority", "enumeration", "select",
                     options=["NONE", "LOW", "MEDIUM", "HIGH"]),
                  _p("hs_task_type", "enumeration", "select", options=["CALL", "EMAIL", "TODO"])],
    }[kind]
    for prop in [*common, *specific]:
        if prop.group_name == "contactinformation":
            prop.group_name = group
    return [*common, *specific]


def iso_ms(moment: datetime) -> str:
    """HubSpot's datetime rendering: ISO 8601, milliseconds, Z."""
    utc = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    if utc.year < 1000:   # strftime leaves such a year unpadded; isoformat would pad it
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    # every record read renders two of these: isoformat costs half of strftime
    return utc.isoformat(timespec="milliseconds")[:-6] + "Z"


def parse_datetime_value(value: str) -> datetime | None:
    """Epoch milliseconds or ISO 8601 (date or datetime) -> aware UTC datetime; None if bad."""
    text = value.strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_ms(value: str) -> float | None:
    moment = parse_datetime_value(value)
    return None if moment is None else moment.timestamp() * 1000


def _invalid(name: str, message: str, error: str) -> dict[str, Any]:
    return {"isValid": False, "message": message, "error": error, "name": name,
            "localizedErrorMessage": message}


def normalise_value(prop: PropertyDef, raw: Any) -> tuple[str | None, dict[str, Any] | None]:
    """(stored string, None) or (None, HubSpot property error). An empty string clears."""
    if raw is None or raw == "":
        return "", None
    value = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if prop.type == "number":
        try:
            number = float(value)
        except ValueError:
            return None, _invalid(prop.name, f"{value} is not a valid number.", "INVALID_NUMBER")
        return (str(int(number)) if number.is_integer() and "." not in value else value), None
    if prop.type in ("datetime", "date"):
        moment = parse_datetime_value(value)
        if moment is None:
            return None, _invalid(prop.name, f"{value} is not a valid date/time value. "
                                  "Use epoch milliseconds or ISO 8601.", "INVALID_DATE")
        if prop.type == "date":
            return moment.date().isoformat(), None
        return iso_ms(moment), None
    if prop.type == "bool":
        if value.lower() not in ("true", "false"):
            return None, _invalid(prop.name, f"{value} is not a valid boolean.", "INVALID_BOOL")
        return value.lower(), None
    if prop.type == "enumeration" and prop.options:
        chosen = value.split(";") if prop.field_type == "checkbox" else [value]
        bad = [c for c in chosen if c not in prop.options]
        if bad:
            allowed = "\n".join(f'label: "{o.replace("-", " ").title()}"\nvalue: "{o}"'
                                for o in prop.options)
            return None, _invalid(prop.name, f"{bad[0]} was not one of the allowed options: "
                                  f"[{allowed}]", "INVALID_OPTION")
    if prop.type == "string" and len(value) > 65536:
        return None, _invalid(prop.name, f"Property \"{prop.name}\" value is too long "
                              "(65536 characters at most).", "INVALID_STRING_LENGTH")
    return value, None


# HubSpot checks an e-mail's shape and that its top-level domain exists (INVALID_EMAIL, e.g.
# "Email address name@domain.con is invalid", seen from batch upserts in
# github.com/Atlas-Authority/marketing-automation/issues/174). The sandbox knows the common
# generic TLDs and every two-letter country code; reserved names (RFC 2606: example, test,
# invalid, localhost) are not delegated in the IANA root zone and are refused.
GENERIC_TLDS = frozenset({
    "com", "org", "net", "edu", "gov", "mil", "int", "io", "ai", "app", "dev", "biz", "info",
    "name", "pro", "co", "tech", "cloud", "online", "site", "store", "shop", "blog", "agency",
    "consulting", "solutions", "services", "company", "global", "group", "digital", "media",
    "email", "marketing", "software", "systems", "network", "team", "studio", "design",
    "finance", "capital", "health", "law", "academy", "school", "university", "xyz", "me",
})
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9-]+\.)+([A-Za-z]{2,63})$")


def email_error(name: str, value: str) -> dict[str, Any] | None:
    """HubSpot's INVALID_EMAIL problem for a malformed address or an unknown TLD."""
    match = _EMAIL.match(value)
    tld = match.group(2).lower() if match else ""
    local = value.split("@", 1)[0]
    if match and ".." not in value and not local.startswith(".") and (
            tld in GENERIC_TLDS or (len(tld) == 2 and tld.isalpha())):
        return None
    return _invalid(name, f"Email address {value} is invalid", "INVALID_EMAIL")
