"""HubSpot streams as a table, and object/event -> record/activity normalisation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from connectors.base import ActivityRecord, RemoteRecord, StreamKind, StreamSpec
from connectors.hubspot.profile import OUTPUTS, SYSTEM
from connectors.hubspot.tasks import key_of
from syncagent.errors import ConfigError

CONTACT_PROPERTIES = (
    "email", "firstname", "lastname", "jobtitle", "company", "numberofemployees",
    "annualrevenue", "industry", "country", "state", "city", "phone", "website",
    OUTPUTS["stage"], "hs_lead_status", OUTPUTS["owner"], "lastmodifieddate", "createdate",
    "hs_object_id", "salesforceleadid", "salesforcecontactid", "hs_analytics_num_page_views",
    "num_conversion_events", "recent_conversion_event_name", "hs_email_last_click_date",
    "hs_email_last_open_date", "hs_analytics_source", "hs_merged_object_ids",
    "hs_lifecyclestage_opportunity_date",     # an outcome for `export-persons`
    # the agent's outputs read back (reasons are written, never read: they follow the score)
    *(OUTPUTS[part] for part in ("grade", "score", "track", "segment", "mql_date")),
)
ANALYTICS_PROPERTIES = ("hs_object_id", "lastmodifieddate", "hs_analytics_num_page_views",
                        "num_conversion_events", "recent_conversion_event_name")
_ENGAGEMENT_COMMON = ("hs_object_id", "hs_lastmodifieddate", "hs_createdate", "hs_timestamp",
                      "hubspot_owner_id")
ENGAGEMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "emails": (*_ENGAGEMENT_COMMON, "hs_email_subject", "hs_email_direction",
               "hs_email_status"),
    "calls": (*_ENGAGEMENT_COMMON, "hs_call_title", "hs_call_disposition", "hs_call_status",
              "hs_call_direction", "hs_call_duration"),
    "meetings": (*_ENGAGEMENT_COMMON, "hs_meeting_title", "hs_meeting_start_time",
                 "hs_meeting_end_time", "hs_meeting_outcome"),
    "tasks": (*_ENGAGEMENT_COMMON, "hs_task_subject", "hs_task_status", "hs_task_body"),
}


ACTIVITY_ENGAGEMENTS = ("emails", "calls", "meetings", "tasks")

#: Search filters that keep an engagement stream to the rows that are scoring signals (what
#: ``engagement_kind`` turns into an activity), so rows that feed nothing are never read, nor
#: their contacts looked up. Calls are all signals (attempted or connected). Each must stay
#: in step with ``engagement_kind``: tests/connectors check both agree on every value.
SIGNAL_FILTERS: dict[str, tuple[dict[str, Any], ...]] = {
    "emails": ({"propertyName": "hs_email_status", "operator": "EQ", "value": "BOUNCED"},),
    "meetings": ({"propertyName": "hs_meeting_outcome", "operator": "IN",
                  "values": ["COMPLETED", "SCHEDULED", "RESCHEDULED"]},),
    "tasks": ({"propertyName": "hs_task_status", "operator": "EQ", "value": "COMPLETED"},),
}


class ReadMode(StrEnum):
    """How a stream is read (``StreamSpec.options["mode"]``)."""

    SEARCH = "search"        # the incremental search sweep (sweep.py)
    ARCHIVED = "archived"    # the archived list, read whole
    OWNERS = "owners"        # the owners list, read whole
    EVENTS = "events"        # the web events API, falling back to contact analytics


def read_mode(spec: StreamSpec) -> ReadMode:
    """The stream's read mode; a ConfigError names the stream when it has none we know."""
    mode = spec.options.get("mode")
    try:
        return ReadMode(str(mode))
    except ValueError:
        raise ConfigError(f"HubSpot stream '{spec.name}' has no known read mode ({mode!r})",
                          hint="Set options['mode'] to one of: "
                               + ", ".join(m.value for m in ReadMode)) from None


def _spec(name: str, obj: str, fields: tuple[str, ...], cursor: str, *, mode: ReadMode,
          kind: StreamKind = "records", deletes: bool = False,
          filters: tuple[dict[str, Any], ...] = ()) -> StreamSpec:
    options: dict[str, Any] = {"mode": mode}
    if filters:
        options["filters"] = filters     # ANDed into every filter group of the search
    return StreamSpec(name=name, system="hubspot", object=obj, fields=fields,
                      cursor_field=cursor, kind=kind, id_field="hs_object_id",
                      deletes=deletes, options=options)


#: The HubSpot stream table; each stream's ``mode`` (ReadMode) says how it is read.
STREAMS: tuple[StreamSpec, ...] = (
    _spec("contacts", "contacts", CONTACT_PROPERTIES, "lastmodifieddate", deletes=True,
          mode=ReadMode.SEARCH),
    _spec("contacts_archived", "contacts", ("email",), "archivedAt", deletes=True,
          mode=ReadMode.ARCHIVED),
    _spec("owners", "owners", ("email", "firstName", "lastName", "userId", "teams"),
          "updatedAt", mode=ReadMode.OWNERS),
    # Engagements that carry a scoring signal. `emails` feeds email_bounce (a BOUNCED sales
    # e-mail); notes are a rep's free text with no activity kind to derive, so they are not
    # read (docs/connectors.md, "Activities").
    *(_spec(kind, kind, ENGAGEMENT_PROPERTIES[kind], "hs_lastmodifieddate", kind="activities",
            mode=ReadMode.SEARCH, filters=SIGNAL_FILTERS.get(kind, ()))
      for kind in ACTIVITY_ENGAGEMENTS),
    _spec("web_events", "events", ("eventType", "occurredAt", "objectId", "properties"),
          "occurredAt", kind="activities", mode=ReadMode.EVENTS),
)
#: The shipped streams by name (a connector's own table may leave some out)
STREAMS_BY_NAME: Mapping[str, StreamSpec] = {s.name: s for s in STREAMS}

#: the property a batch upsert matches on, per object
UPSERT_ID_PROPERTY = {"contacts": "email"}
# HUBSPOT_DEFINED association type ids a create may carry, (from object, to object) -> id
# (task to contact: 204, "Associations v4: association type id values").
ASSOCIATION_TYPE_IDS = {("tasks", "contacts"): 204}

EVENT_KINDS = {
    "e_visited_page": "page_view",
    "e_submitted_form": "form_submission",
    "e_opened_email": "email_open",
    "e_clicked_email": "email_click",
    "e_registered_webinar": "webinar_registered",
    "e_attended_webinar": "webinar_attended",
    "e_downloaded_file": "file_download",
    "e_unsubscribed": "unsubscribe",
    "e_email_bounced": "email_bounce",
}
CONNECTED_DISPOSITION = "f240bbac-87c9-4f6e-bf70-924b57d47db7"   # HubSpot's "Connected"
_CONNECTED = re.compile(r"(?i)connected")


def parse_time(value: Any) -> datetime | None:
    """HubSpot ISO strings (``2026-03-01T10:00:00.000Z``) or epoch-ms strings -> aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def modstamp_of(spec: StreamSpec, row: Mapping[str, Any]) -> datetime | None:
    props = row.get("properties") or {}
    return parse_time(props.get(spec.cursor_field)) or parse_time(row.get("updatedAt"))


def to_record(spec: StreamSpec, row: Mapping[str, Any], modstamp: datetime) -> RemoteRecord:
    fields = dict(row.get("properties") or {})
    return RemoteRecord(system=SYSTEM, object=spec.object, id=str(row["id"]), fields=fields,
                        modstamp=modstamp, deleted=bool(row.get("archived")))


def merges_of(spec: StreamSpec, row: Mapping[str, Any], modstamp: datetime
              ) -> list[RemoteRecord]:
    """Contacts merged into this one are gone: report each as deleted, merged into it."""
    merged = str((row.get("properties") or {}).get("hs_merged_object_ids") or "")
    survivor = str(row["id"])
    return [RemoteRecord(system=SYSTEM, object=spec.object, id=old, fields={},
                         modstamp=modstamp, deleted=True, merged_into=survivor)
            for old in merged.split(";") if old.strip() and old.strip() != survivor]


def engagement_kind(object_type: str, props: Mapping[str, Any]) -> str | None:
    """An engagement -> a kind of the shared vocabulary (None: not a scoring signal)."""
    if object_type == "calls":
        disposition = str(props.get("hs_call_disposition") or "")
        connected = disposition == CONNECTED_DISPOSITION or bool(_CONNECTED.search(disposition))
        return "call_connected" if connected else "call_attempted"
    if object_type == "meetings":
        outcome = props.get("hs_meeting_outcome")
        demo = "demo" in str(props.get("hs_meeting_title") or "").lower()
        if outcome == "COMPLETED":
            return "demo_completed" if demo else "meeting_completed"
        if outcome in ("SCHEDULED", "RESCHEDULED"):
            return "meeting_set"
        return None
    if object_type == "emails":
        return "email_bounce" if props.get("hs_email_status") == "BOUNCED" else None
    if object_type == "tasks":
        # The agent's own tasks (alerts, SLA reminders: its key is the body's last line) are
        # not activity: they exist because of the score, and would feed it back into itself.
        if key_of(props.get("hs_task_body")) is not None:
            return None
        return "task_completed" if props.get("hs_task_status") == "COMPLETED" else None
    return None


def engagement_activities(spec: StreamSpec, row: Mapping[str, Any], contacts: list[str],
                          modstamp: datetime) -> list[ActivityRecord]:
    props = dict(row.get("properties") or {})
    kind = engagement_kind(spec.object, props)
    if kind is None:
        return []
    when = parse_time(props.get("hs_timestamp")) or modstamp
    details: dict[str, Any] = {"object": spec.object, "fields": props}
    for name in ("hs_email_subject", "hs_call_title", "hs_meeting_title", "hs_task_subject"):
        if props.get(name):
            details["subject"] = props[name]
    rid = str(row["id"])
    if not contacts:
        return [ActivityRecord(system=SYSTEM, id=rid, kind=kind, occurred_at=when,
                               person_ref=None, details=details)]
    # one activity per associated contact; the id stays the engagement's when there is one
    return [ActivityRecord(system=SYSTEM, id=rid if len(contacts) == 1 else f"{rid}:{c}",
                           kind=kind, occurred_at=when, person_ref=(SYSTEM, "contacts", c),
                           details=details)
            for c in contacts]


def event_activity(event: Mapping[str, Any]) -> ActivityRecord | None:
    kind = EVENT_KINDS.get(str(event.get("eventType")))
    when = parse_time(event.get("occurredAt"))
    if kind is None or when is None:
        return None
    props = dict(event.get("properties") or {})
    details: dict[str, Any] = {"event_type": event.get("eventType"), "properties": props}
    if props.get("hs_url"):
        details["url"] = props["hs_url"]
    if props.get("hs_form_title") or props.get("hs_form_id"):
        details["form"] = props.get("hs_form_title") or props.get("hs_form_id")
    if props.get("hs_email_campaign"):
        details["campaign"] = props["hs_email_campaign"]
    if props.get("hs_webinar_name"):
        details["webinar"] = props["hs_webinar_name"]
    object_id = event.get("objectId")
    ref = (SYSTEM, "contacts", str(object_id)) if object_id else None
    return ActivityRecord(system=SYSTEM, id=str(event.get("id")), kind=kind, occurred_at=when,
                          person_ref=ref, details=details)


def analytics_activities(row: Mapping[str, Any], modstamp: datetime) -> list[ActivityRecord]:
    """Fallback when the events API is unavailable: activities derived from the contact's
    analytics counters. Ids are deterministic (``contact:kind:n``), so re-reading the same
    counters yields the same activities and only growth adds new ones."""
    props = row.get("properties") or {}
    cid = str(row["id"])
    ref = (SYSTEM, "contacts", cid)
    out: list[ActivityRecord] = []
    counters: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("hs_analytics_num_page_views", "page_view", {}),
        ("num_conversion_events", "form_submission",
         {"form": props.get("recent_conversion_event_name")}))
    for prop, kind, details in counters:
        count = _count(props.get(prop))
        for n in range(1, count + 1):
            out.append(ActivityRecord(system=SYSTEM, id=f"{cid}:{kind}:{n}", kind=kind,
                                      occurred_at=modstamp, person_ref=ref,
                                      details={"derived_from": prop,
                                               **{k: v for k, v in details.items() if v}}))
    return out


#: Marketing e-mail opens and clicks are not in the events API (events.py of the sandbox;
#: HubSpot's events API serves web events), at any tier: they come from these contact
#: properties, read by the contacts stream.
EMAIL_DATE_KINDS = (("hs_email_last_open_date", "email_open"),
                    ("hs_email_last_click_date", "email_click"))


def email_activities(row: Mapping[str, Any]) -> list[ActivityRecord]:
    """The contact's last marketing e-mail open and click, as activities. Ids carry the date,
    so a re-read of the same dates adds nothing and a newer open or click adds one."""
    props = row.get("properties") or {}
    cid = str(row["id"])
    out: list[ActivityRecord] = []
    for prop, kind in EMAIL_DATE_KINDS:
        when = parse_time(props.get(prop))
        if when is not None:
            out.append(ActivityRecord(system=SYSTEM, id=f"{cid}:{kind}:{when.isoformat()}",
                                      kind=kind, occurred_at=when,
                                      person_ref=(SYSTEM, "contacts", cid),
                                      details={"derived_from": prop}))
    return out


def with_mapped_fields(table: tuple[StreamSpec, ...], names: Sequence[str]
                       ) -> tuple[StreamSpec, ...]:
    """The stream table with every mapped HubSpot property added to the contacts streams
    (a field an admin maps in fields.yaml must be read, not only written)."""
    out = []
    for spec in table:
        if spec.object == "contacts" and spec.kind == "records" and \
                spec.options.get("mode") == ReadMode.SEARCH:
            extra = tuple(n for n in dict.fromkeys(names) if n and n not in spec.fields)
            spec = replace(spec, fields=(*spec.fields, *extra))
        out.append(spec)
    return tuple(out)


def _count(value: Any) -> int:
    try:
        return max(int(float(value)), 0)
    except (TypeError, ValueError):
        return 0
