"""Salesforce streams as a table, SOQL building, and row -> record/activity normalisation.

Field lists leave out long-text fields (``Score_Reasons__c``, ``Description``): selecting one
drops Salesforce's query batch from 2,000 rows to 200, a tenfold cost in calls. The agent
knows what it wrote there from its own mirror.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from simple_salesforce import format_soql

from connectors.base import ActivityRecord, RemoteRecord, StreamKind, StreamSpec
from connectors.salesforce.profile import EXTERNAL_ID, OUTPUTS, SYSTEM
from syncagent.errors import ConfigError

MODSTAMP = "SystemModstamp"

_SYSTEM_FIELDS = ("Id", "IsDeleted", "CreatedDate", "LastModifiedDate", "SystemModstamp")
# the agent's outputs read back (reasons are written, never read: they follow the score)
_AGENT_FIELDS = tuple(OUTPUTS[part] for part in
                      ("grade", "score", "stage", "track", "segment", "mql_date"))
_PERSON_FIELDS = ("Email", "FirstName", "LastName", "Title", "Phone", "LeadSource",
                  "HasOptedOutOfEmail", "OwnerId", "MasterRecordId")

LEAD_FIELDS = (*_SYSTEM_FIELDS, *_PERSON_FIELDS, "Company", "NumberOfEmployees",
               "AnnualRevenue", "Industry", "Country", "State", "City", "Website", "Status",
               "IsConverted", "ConvertedContactId", "ConvertedAccountId", "ConvertedDate",
               "Disqualified_Reason__c", *_AGENT_FIELDS)
CONTACT_FIELDS = (*_SYSTEM_FIELDS, *_PERSON_FIELDS, "AccountId", "Department", "MailingCountry",
                  "MailingState", "MailingCity", *_AGENT_FIELDS)
ACCOUNT_FIELDS = (*_SYSTEM_FIELDS, "MasterRecordId", "Name", "Website", "NumberOfEmployees",
                  "AnnualRevenue", "Industry", "BillingCountry", "BillingState", "OwnerId",
                  "Type")
USER_FIELDS = ("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp", "Email", "Name",
               "FirstName", "LastName", "IsActive", "ManagerId", "Territory__c",
               "Out_Of_Office__c", "UserType", "Title", "Department")
TASK_FIELDS = (*_SYSTEM_FIELDS, "WhoId", "WhatId", "Subject", "Type", "TaskSubtype",
               "CallDisposition", "CallType", "ActivityDate", "Status", "IsClosed",
               "CompletedDateTime", "OwnerId", "Idempotency_Key__c")
EVENT_FIELDS = (*_SYSTEM_FIELDS, "WhoId", "WhatId", "Subject", "Type", "ActivityDate",
                "ActivityDateTime", "StartDateTime", "EndDateTime", "OwnerId")
CAMPAIGN_FIELDS = (*_SYSTEM_FIELDS, "Name", "Type", "Status", "StartDate", "EndDate",
                   "IsActive", "OwnerId")
CAMPAIGN_MEMBER_FIELDS = (*_SYSTEM_FIELDS, "CampaignId", "LeadId", "ContactId", "Status",
                          "HasResponded", "FirstRespondedDate")


def _stream(name: str, fields: tuple[str, ...], *, kind: StreamKind = "records",
            deletes: bool = True) -> StreamSpec:
    return StreamSpec(name=name, system="salesforce", object=name, fields=fields,
                      cursor_field=MODSTAMP, kind=kind, id_field="Id", deletes=deletes)


#: The Salesforce stream table.
STREAMS: tuple[StreamSpec, ...] = (
    _stream("Lead", LEAD_FIELDS),
    _stream("Contact", CONTACT_FIELDS),
    _stream("Account", ACCOUNT_FIELDS),
    _stream("User", USER_FIELDS, deletes=False),      # users are deactivated, never deleted
    _stream("Task", TASK_FIELDS, kind="activities"),
    _stream("Event", EVENT_FIELDS, kind="activities"),
    _stream("Campaign", CAMPAIGN_FIELDS),
    _stream("CampaignMember", CAMPAIGN_MEMBER_FIELDS, kind="activities"),
)

def with_fields(spec: StreamSpec, extra: Sequence[str]) -> StreamSpec:
    """The spec with more fields (e.g. the ones the mappings use), order kept, no repeats."""
    return replace(spec, fields=tuple(dict.fromkeys((*spec.fields, *extra))))


def with_options(spec: StreamSpec, **options: Any) -> StreamSpec:
    """The spec with more connector options (e.g. ``batch_size=200``)."""
    return replace(spec, options={**spec.options, **options})


def with_mapped_fields(mapped: Mapping[str, Iterable[str]],
                       table: Sequence[StreamSpec] = STREAMS) -> tuple[StreamSpec, ...]:
    """The stream table with every field the mappings name (object -> field names) added to
    its object's stream, so a field an admin maps is read as well as written. A mapped field
    the org lacks is dropped at read time with a warning (see ``schema_cache``)."""
    return tuple(with_fields(spec, [identifier(f) for f in mapped.get(spec.object, ())])
                 for spec in table)


#: Which streams take a Composite's five query slots first (the busiest).
HOT_ORDER = ("Lead", "Contact", "Task", "Event", "CampaignMember", "Account", "User",
             "Campaign")

#: Objects whose creates carry an idempotency key, and the external-id field that holds it.
# Creates carry the agent's key in these external-id fields, so they are upserts: a retried
# create can never make a second record.
IDEMPOTENCY_FIELDS = {"Task": "Idempotency_Key__c", "Lead": EXTERNAL_ID, "Contact": EXTERNAL_ID}

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*$")


def identifier(name: str) -> str:
    """Field/object names come from the stream table or mappings, never from data; still,
    refuse anything that is not a plain SOQL identifier, since they are inserted as literals."""
    if not _IDENT.match(name):
        raise ConfigError(f"'{name}' is not a Salesforce field or object name",
                          hint="Use API names such as Lead_Score__c.")
    return name


def incremental_soql(spec: StreamSpec, lower: datetime | None, *,
                     read_before: datetime | None = None, writer: str | None = None) -> str:
    """``SELECT .. WHERE SystemModstamp >= lower ORDER BY SystemModstamp, Id`` (quoted by the
    library; the datetime literal is truncated to the second, which only widens the window).

    With ``read_before`` (the previous read's high-water mark) and ``writer`` (the agent's own
    username), rows of the re-read window stamped before ``read_before``'s second and last
    modified by the agent are left out: that read saw them already, and a person's later edit
    changes ``LastModifiedById``, so it is still read (see docs/connectors.md). Salesforce
    stamps to the second, so a row stamped in that very second may have been written after
    the read: ``>=`` the truncated literal reads it (with ``>`` it was lost for good; the
    cursor's keys drop the rows of that second the read did see).
    """
    fields = ", ".join(identifier(f) for f in spec.fields)
    obj = identifier(spec.object)
    if lower is None:
        return format_soql("SELECT {:literal} FROM {:literal} ORDER BY SystemModstamp, Id",
                           fields, obj)
    if read_before is not None and writer and read_before > lower:
        return format_soql("SELECT {:literal} FROM {:literal} WHERE SystemModstamp >= {} AND "
                           "(SystemModstamp >= {} OR LastModifiedBy.Username != {}) "
                           "ORDER BY SystemModstamp, Id", fields, obj, lower.astimezone(UTC),
                           read_before.astimezone(UTC), writer)
    return format_soql("SELECT {:literal} FROM {:literal} WHERE SystemModstamp >= {} "
                       "ORDER BY SystemModstamp, Id", fields, obj, lower.astimezone(UTC))


def by_id_soql(spec: StreamSpec, record_ids: Iterable[str]) -> str:
    """The stream's fields of the given records (e.g. ones the agent just created)."""
    return fields_by_id_soql(spec.object, spec.fields, record_ids)


def fields_by_id_soql(obj: str, fields: Iterable[str], record_ids: Iterable[str]) -> str:
    """Some fields of the given records (a wide field list's groups: wide.py)."""
    return format_soql("SELECT {:literal} FROM {:literal} WHERE Id IN {}",
                       ", ".join(identifier(f) for f in fields), identifier(obj),
                       list(record_ids))


def ids_soql(obj: str) -> str:
    return format_soql("SELECT Id FROM {:literal}", identifier(obj))


def lookup_soql(obj: str, field: str, values: Iterable[Any]) -> str:
    """``SELECT Id, field FROM obj WHERE field IN (...)``: values quoted by format_soql."""
    return format_soql("SELECT Id, {:literal} FROM {:literal} WHERE {:literal} IN {}",
                       identifier(field), identifier(obj), identifier(field), list(values))


def parse_datetime(value: Any) -> datetime | None:
    """Salesforce datetimes (``2026-01-01T10:00:00.000+0000``) and dates -> aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def clean_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "attributes"}


def person_ref(record_id: str | None) -> tuple[str, str, str] | None:
    """A WhoId / LeadId / ContactId -> (system, object, id), by the id's key prefix."""
    if not record_id:
        return None
    prefix = record_id[:3]
    if prefix == "00Q":
        return (SYSTEM, "Lead", record_id)
    if prefix == "003":
        return (SYSTEM, "Contact", record_id)
    return None


def to_record(spec: StreamSpec, row: dict[str, Any]) -> RemoteRecord:
    fields = clean_row(row)
    deleted = bool(fields.get("IsDeleted"))
    merged_into = fields.get("MasterRecordId") if deleted else None
    modstamp = parse_datetime(fields.get(MODSTAMP)) or datetime.now(UTC)
    return RemoteRecord(system=SYSTEM, object=spec.object, id=str(fields["Id"]), fields=fields,
                        modstamp=modstamp, deleted=deleted, merged_into=merged_into or None)


_CONNECTED = re.compile(r"(?i)\b(connected|spoke|reached|conversation|answered|talked)\b")
# A subject that names a call: "Call", "Called Ana", "Callback: pricing", "Phone call". Only a
# whole word counts, so "California visit" or "Callisto onboarding" is not a call.
_CALL_SUBJECT = re.compile(r"(?i)^\W*(?:(?:cold|phone|sales|discovery)\s+)?"
                           r"(?:call|calls|called|calling|call-?back)\b")


def _is_call(fields: dict[str, Any]) -> bool:
    # TaskSubtype is Salesforce's own word when set (a task logged as an e-mail is not a call,
    # whatever its subject says); the subject is only a hint for tasks that lack it.
    subtype = fields.get("TaskSubtype")
    if subtype:
        return bool(subtype == "Call")
    return fields.get("Type") == "Call" or bool(_CALL_SUBJECT.match(str(fields.get("Subject")
                                                                          or "")))


def task_kind(fields: dict[str, Any]) -> str | None:
    """A Task -> call_connected, call_attempted (a call logged without a connection: the
    disposition does not say the rep reached the person), task_completed (any other task a rep
    closed) or None (still open). The agent's own tasks (alerts, SLA reminders: they carry its
    Idempotency_Key__c) are not activity: they exist because of the score, so counting a rep
    closing one would feed the score back into itself, and an alert named "call-..." would
    read as a call."""
    if fields.get("Idempotency_Key__c"):
        return None
    if _is_call(fields):
        return ("call_connected" if _CONNECTED.search(str(fields.get("CallDisposition") or ""))
                else "call_attempted")
    if fields.get("Status") == "Completed" or fields.get("IsClosed"):
        return "task_completed"
    return None


def event_kind(fields: dict[str, Any], now: datetime) -> str | None:
    end = parse_datetime(fields.get("EndDateTime") or fields.get("ActivityDateTime")
                         or fields.get("ActivityDate"))
    past = end is not None and end <= now
    if fields.get("Type") == "Demo" or "demo" in str(fields.get("Subject") or "").lower():
        return "demo_completed" if past else "meeting_set"
    return "meeting_completed" if past else "meeting_set"


def campaign_member_kinds(fields: dict[str, Any]) -> list[str]:
    status = fields.get("Status")
    kinds = []
    if status == "Registered":
        kinds.append("webinar_registered")
    if status == "Attended":
        kinds.append("webinar_attended")
    if fields.get("HasResponded") or status in ("Responded", "Attended"):
        kinds.append("campaign_response")
    return kinds


def to_activities(spec: StreamSpec, row: dict[str, Any],
                  now: datetime) -> list[ActivityRecord | RemoteRecord]:
    """An activity row -> activities in the shared vocabulary (or a deletion record)."""
    fields = clean_row(row)
    if fields.get("IsDeleted"):
        return [to_record(spec, row)]
    record_id = str(fields["Id"])
    created = parse_datetime(fields.get("CreatedDate")) or now
    if spec.object == "Task":
        kind = task_kind(fields)
        when = parse_datetime(fields.get("CompletedDateTime") or fields.get("ActivityDate"))
        kinds = [kind] if kind else []
        ref = person_ref(fields.get("WhoId"))
    elif spec.object == "Event":
        kind = event_kind(fields, now)
        when = parse_datetime(fields.get("StartDateTime") or fields.get("ActivityDateTime")
                              or fields.get("ActivityDate"))
        kinds = [kind] if kind else []
        ref = person_ref(fields.get("WhoId"))
    else:
        kinds = campaign_member_kinds(fields)
        when = parse_datetime(fields.get("FirstRespondedDate"))
        ref = person_ref(fields.get("LeadId") or fields.get("ContactId"))
    details = {"subject": fields.get("Subject"), "type": fields.get("Type"),
               "status": fields.get("Status"), "campaign": fields.get("CampaignId"),
               "object": spec.object, "fields": fields}
    details = {k: v for k, v in details.items() if v is not None}
    many = len(kinds) > 1
    return [ActivityRecord(system=SYSTEM, id=f"{record_id}:{kind}" if many else record_id,
                           kind=kind, occurred_at=when or created, person_ref=ref,
                           details=details)
            for kind in kinds]


def created_since_soql(obj: str, fields: Iterable[str], username: str, since: datetime) -> str:
    """The given fields of the records of ``obj`` that ``username`` created since ``since``
    (a read-back of creates whose answer was lost: readback.py)."""
    names = ["Id", *sorted({identifier(f) for f in fields if f.casefold() != "id"})]
    return format_soql("SELECT {:literal} FROM {:literal} WHERE CreatedBy.Username = {} AND "
                       "CreatedDate >= {} ORDER BY CreatedDate, Id", ", ".join(names),
                       identifier(obj), username, since.astimezone(UTC))
