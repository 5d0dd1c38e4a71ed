"""What the pipeline knows about remote records: which objects are people, their e-mail key,
their cross-system ids, and the fields the agent writes back on each system."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Ref = tuple[str, str, str]  # (system, object, remote id)

SF_LEAD = ("salesforce", "Lead")
SF_CONTACT = ("salesforce", "Contact")
HS_CONTACT = ("hubspot", "contacts")
PERSON_OBJECTS = frozenset({SF_LEAD, SF_CONTACT, HS_CONTACT})

EMAIL_FIELD = {SF_LEAD: "Email", SF_CONTACT: "Email", HS_CONTACT: "email"}

# The decision's parts as each system names them (the agent's default custom fields).
SF_OUTPUTS = {"grade": "Lead_Grade__c", "score": "Lead_Score__c", "stage": "Lifecycle_Stage__c",
              "segment": "Segment__c", "reasons": "Score_Reasons__c", "mql_date": "MQL_Date__c",
              "track": "Nurture_Track__c", "owner": "OwnerId"}
HS_OUTPUTS = {"grade": "lead_grade", "score": "lead_score", "stage": "lifecyclestage",
              "segment": "lead_segment", "reasons": "score_reasons", "mql_date": "mql_date",
              "track": "nurture_track", "owner": "hubspot_owner_id"}
# HubSpot's lifecyclestage has its own internal values.
HS_STAGE = {"Subscriber": "subscriber", "Inquiry": "lead", "Lead": "lead", "Recycled": "lead",
            "Nurture": "lead", "Disqualified": "other", "MQL": "marketingqualifiedlead",
            "SAL": "salesqualifiedlead", "SQL": "salesqualifiedlead", "Opportunity": "opportunity",
            "Customer": "customer"}
# HubSpot's default lifecycle order; a stage moves forward only unless cleared first.
HS_STAGE_FIELD = "lifecyclestage"
HS_STAGE_ORDER = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
                  "opportunity", "customer", "evangelist", "other")
# Values people choose by hand: a change by someone else after our last write is kept.
HUMAN_OWNED = frozenset({"OwnerId", "Nurture_Track__c", "hubspot_owner_id"})
# The external id that makes creating a Salesforce Lead for a HubSpot-only person idempotent.
SF_EXTERNAL_ID = "Syncagent_Id__c"


def email_key(system: str, object_name: str, fields: Mapping[str, Any]) -> str | None:
    """The normalised e-mail a person record is matched on."""
    name = EMAIL_FIELD.get((system, object_name))
    value = fields.get(name) if name else None
    if not isinstance(value, str) or "@" not in value:
        return None
    return value.strip().lower()


def is_person(system: str, object_name: str) -> bool:
    return (system, object_name) in PERSON_OBJECTS


def cross_refs(system: str, object_name: str, fields: Mapping[str, Any]) -> list[Ref]:
    """Records of the other system (or the same) that this record says are the same person."""
    refs: list[Ref] = []
    if (system, object_name) == HS_CONTACT:
        for field_name, sf_object in (("salesforcecontactid", "Contact"),
                                      ("salesforceleadid", "Lead")):
            value = fields.get(field_name)
            if value:
                refs.append(("salesforce", sf_object, str(value)))
    elif (system, object_name) == SF_LEAD and fields.get("ConvertedContactId"):
        refs.append(("salesforce", "Contact", str(fields["ConvertedContactId"])))
    return refs


def same_value(desired: Any, current: Any) -> bool:
    """Equal as the remote system would store them (HubSpot returns every value as text)."""
    if desired is None or desired == "":
        return current is None or current == ""
    if current is None or current == "":
        return False
    if isinstance(desired, datetime):
        parsed = parse_when(current)
        return parsed is not None and abs((parsed - desired).total_seconds()) < 1
    if isinstance(desired, bool) or isinstance(current, bool):
        return str(desired).lower() == str(current).lower()
    if isinstance(desired, int | float):
        try:
            return abs(float(current) - float(desired)) < 1e-9
        except (TypeError, ValueError):
            return False
    return str(desired) == str(current)


def parse_when(value: Any) -> datetime | None:
    """A datetime from either system's wire formats (ISO with +0000 / Z, epoch ms)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def wire_value(system: str, value: Any) -> Any:
    """A value as the API takes it: ISO datetimes; HubSpot wants text."""
    if isinstance(value, datetime):
        stamp = value.astimezone(UTC)
        if system == "hubspot":
            return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    if system == "hubspot" and value is not None and not isinstance(value, str):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value).lower() if isinstance(value, bool) else str(value)
    return value
