"""State of the emulated HubSpot portal: CRM objects, properties, owners, lists, events.

Routers call these methods under ``ctx.lock``. Errors that HubSpot reports for a whole call
raise :class:`HubSpotError`; per-record problems are returned so batch endpoints can answer
207 with ``errors[].context.ids``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

from syncagent.sandbox.common import SandboxClock, SandboxContext
from syncagent.sandbox.hubspot.journal import ChangeJournal, MatchCache
from syncagent.sandbox.hubspot.properties import (
    ENGAGEMENT_TYPES,
    LIFECYCLE_STAGES,
    PropertyDef,
    contact_groups,
    contact_properties,
    email_error,
    engagement_properties,
    iso_ms,
    normalise_value,
)
from syncagent.sandbox.hubspot.ratelimit import HubSpotRateLimiter

OBJECT_TYPES = ("contacts", *ENGAGEMENT_TYPES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class HubSpotError(Exception):
    """A whole-call error: rendered as {status: "error", message, correlationId, category}."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR",
                 **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.extra = extra


@dataclass(slots=True)
class HsRecord:
    """One CRM object; property values are strings, as the API sends them."""

    id: int
    properties: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived: bool = False
    archived_at: datetime | None = None
    associations: dict[str, set[int]] = field(default_factory=dict)
    updated_ms: float = 0.0


@dataclass
class Owner:
    id: int
    email: str
    first_name: str
    last_name: str
    user_id: int
    created_at: datetime
    teams: list[dict[str, Any]] = field(default_factory=list)
    archived: bool = False

    def as_json(self) -> dict[str, Any]:
        stamp = iso_ms(self.created_at)
        return {"id": str(self.id), "email": self.email, "firstName": self.first_name,
                "lastName": self.last_name, "userId": self.user_id, "userIdIncludingInactive":
                self.user_id, "type": "PERSON", "createdAt": stamp, "updatedAt": stamp,
                "archived": self.archived, "teams": self.teams}


@dataclass
class HsList:
    list_id: int
    name: str
    processing_type: str                      # MANUAL, SNAPSHOT or DYNAMIC
    created_at: datetime
    members: dict[int, datetime] = field(default_factory=dict)
    object_type_id: str = "0-1"

    def as_json(self) -> dict[str, Any]:
        stamp = iso_ms(self.created_at)
        return {"listId": str(self.list_id), "name": self.name, "objectTypeId":
                self.object_type_id, "processingType": self.processing_type,
                "processingStatus": "COMPLETE", "listVersion": 1, "createdAt": stamp,
                "updatedAt": stamp, "size": len(self.members)}


@dataclass(slots=True)
class WebEvent:
    id: str
    event_type: str
    object_id: int
    occurred_at: datetime
    properties: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {"objectType": "CONTACT", "objectId": str(self.object_id), "eventType":
                self.event_type, "occurredAt": iso_ms(self.occurred_at), "id": self.id,
                "properties": self.properties}


EVENT_TYPES = ("e_visited_page", "e_submitted_form", "e_opened_email", "e_clicked_email",
               "e_registered_webinar", "e_attended_webinar")


def modified_property(object_type: str) -> str:
    """Contacts use lastmodifieddate; every other object hs_lastmodifieddate."""
    return "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"


def created_property(object_type: str) -> str:
    return "createdate" if object_type == "contacts" else "hs_createdate"


class ObjectStore:
    """Records of one object type, with the email index contacts need, and what the search
    index keeps beside them (journal.py): every change to a record's id, date or archived
    flag goes through HubSpotPortal, which notes it in the journal."""

    def __init__(self, object_type: str, first_id: int) -> None:
        self.object_type = object_type
        self.records: dict[int, HsRecord] = {}
        self.by_email: dict[str, int] = {}
        self.merged_into: dict[int, int] = {}
        self._ids = itertools.count(first_id)
        self.journal = ChangeJournal(self.records)
        self.matches = MatchCache()

    def next_id(self) -> int:
        return next(self._ids)


class HubSpotPortal:
    """The emulated portal. Public methods are called by the router and by seed/simulate."""

    def __init__(self, clock: SandboxClock, *, profile: str = "configured",
                 scopes: Iterable[str] | None = None, tier: str = "enterprise",
                 salesforce_integration: bool | None = None) -> None:
        """``profile`` "fresh" is a new portal (none of the agent's properties, group or
        lists); ``scopes`` are the private-app token's (None: every scope); ``tier`` decides
        whether the events API exists; ``salesforce_integration`` whether HubSpot's own
        Salesforce integration (and its salesforceleadid/contactid properties) is installed
        (default: in a configured portal only)."""
        self.clock = clock
        self.profile = profile
        self.scopes: frozenset[str] | None = None if scopes is None else frozenset(scopes)
        self.tier = tier
        fresh = profile == "fresh"
        self.salesforce_integration = (not fresh if salesforce_integration is None
                                       else salesforce_integration)
        # Set False to answer a refused batch without naming its bad inputs (the agent must
        # then find them by bisection, as with messages that name only a value).
        self.batch_errors_name_inputs = True
        self.rate_limiter = HubSpotRateLimiter()
        self.properties: dict[str, dict[str, PropertyDef]] = {"contacts": {
            p.name: p for p in contact_properties(
                fresh=fresh, salesforce_integration=self.salesforce_integration)}}
        self.property_groups: dict[str, dict[str, str]] = {"contacts": contact_groups(
            fresh=fresh, salesforce_integration=self.salesforce_integration)}
        for kind in ENGAGEMENT_TYPES:
            self.properties[kind] = {p.name: p for p in engagement_properties(kind)}
            self.property_groups[kind] = {p.group_name: p.group_name.title()
                                          for p in self.properties[kind].values()}
        # Contacts start small so ids of different lengths meet in one portal (sorting bugs
        # that compare ids as strings show up); engagements use HubSpot's long ids.
        self.stores: dict[str, ObjectStore] = {"contacts": ObjectStore("contacts", 1)}
        for n, kind in enumerate(ENGAGEMENT_TYPES):
            self.stores[kind] = ObjectStore(kind, 40_000_000_000 + n * 1_000_000_000)
        self.owners: dict[int, Owner] = {}
        self.lists: dict[int, HsList] = {}
        # List ids are assigned by the portal (developers.hubspot.com/docs/guides/api/crm/
        # lists/overview: the listId comes back from create); they start at an arbitrary
        # number so no mapping can guess them.
        self._list_ids = itertools.count(3_187)
        self.events: list[WebEvent] = []
        self._events_sorted = True
        # Paging keys aligned with ``events`` while they are sorted, kept so each events
        # page bisects them instead of recomputing every event's key (quadratic over a
        # backfill); dropped on out-of-order arrival and rebuilt with the next sort.
        self._event_keys: list[tuple[int, str]] = []
        self._event_ids = itertools.count(1)

    @classmethod
    def from_config(cls, clock: SandboxClock, config: Any) -> HubSpotPortal:
        """The portal a :class:`~syncagent.sandbox.common.SandboxConfig` describes: its
        profile, the token's scopes and the subscription tier."""
        return cls(clock, profile=config.profile, scopes=config.hubspot_scopes,
                   tier=config.hubspot_tier)

    # ----- objects ------------------------------------------------------------------------
    def store(self, object_type: str) -> ObjectStore:
        store = self.stores.get(object_type)
        if store is None:
            raise HubSpotError(400, f"Unable to infer object type from: {object_type}",
                               "VALIDATION_ERROR")
        return store

    def property_defs(self, object_type: str) -> dict[str, PropertyDef]:
        self.store(object_type)
        return self.properties[object_type]

    def validate(self, object_type: str, properties: dict[str, Any], *,
                 allow_read_only: bool = False) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """Normalised values and the list of HubSpot property errors (empty when valid)."""
        defs = self.property_defs(object_type)
        clean: dict[str, str] = {}
        errors: list[dict[str, Any]] = []
        for name, raw in properties.items():
            prop = defs.get(name)
            if prop is None:
                message = f'Property "{name}" does not exist'
                errors.append({"isValid": False, "message": message,
                               "error": "PROPERTY_DOESNT_EXIST", "name": name,
                               "localizedErrorMessage": message})
                continue
            if prop.read_only and not allow_read_only:
                message = f'"{name}" is a read only property; its value cannot be set.'
                errors.append({"isValid": False, "message": message, "error": "READ_ONLY_VALUE",
                               "name": name, "localizedErrorMessage": message})
                continue
            value, error = normalise_value(prop, raw)
            if error is None and name == "email" and value:
                error = email_error(name, value)
            if error is None and name == "hubspot_owner_id" and value and \
                    (not value.isdigit() or int(value) not in self.owners):
                message = f"{value} was not one of the allowed options"
                error = {"isValid": False, "message": message, "error": "INVALID_OPTION",
                         "name": name, "localizedErrorMessage": message}
            if error is not None:
                errors.append(error)
            else:
                assert value is not None
                clean[name] = value
        return clean, errors

    def _touch(self, object_type: str, record: HsRecord, when: datetime) -> None:
        record.updated_at = when
        record.updated_ms = when.timestamp() * 1000
        record.properties[modified_property(object_type)] = iso_ms(when)
        self.stores[object_type].journal.note(record.id, record.updated_ms)

    def create(self, object_type: str, properties: dict[str, Any], *,
               associations: dict[str, set[int]] | None = None,
               created_at: datetime | None = None, system: bool = False,
               record_id: int | None = None) -> HsRecord:
        """Create a record (validated unless system=True, used by seeding)."""
        store = self.store(object_type)
        if system:
            clean = {k: str(v) for k, v in properties.items() if v is not None and v != ""}
        else:
            clean, errors = self.validate(object_type, properties)
            errors += _missing_on_create(object_type, clean)
            if errors:
                raise property_error(errors)
            clean = {k: v for k, v in clean.items() if v != ""}
        email = clean.get("email", "").lower()
        if object_type == "contacts" and email and email in store.by_email:
            existing = store.by_email[email]
            raise HubSpotError(409, f"Contact already exists. Existing ID: {existing}",
                               "CONFLICT")
        when = created_at or self.clock.now()
        rid = record_id if record_id is not None else store.next_id()
        clean["hs_object_id"] = str(rid)
        clean.setdefault(created_property(object_type), iso_ms(when))
        record = HsRecord(id=rid, properties=clean, created_at=when, updated_at=when)
        store.records[rid] = record
        self._touch(object_type, record, when)   # in the store first: the journal reads it
        if email:
            store.by_email[email] = rid
        for to_type, ids in (associations or {}).items():
            for other in ids:
                self.associate(object_type, rid, to_type, other)
        return record

    def associate(self, from_type: str, from_id: int, to_type: str, to_id: int) -> None:
        """Link two records both ways (HubSpot associations are bidirectional)."""
        a = self.store(from_type).records.get(from_id)
        b = self.store(to_type).records.get(to_id)
        if a is None or b is None:
            raise HubSpotError(400, f"No {to_type} with id {to_id} to associate with",
                               "VALIDATION_ERROR")
        a.associations.setdefault(to_type, set()).add(to_id)
        b.associations.setdefault(from_type, set()).add(from_id)

    def get(self, object_type: str, record_id: int, *, archived: bool = False,
            follow_merges: bool = True) -> HsRecord | None:
        """A live record (or an archived one when archived=True); merged ids resolve."""
        store = self.store(object_type)
        if follow_merges and not archived:
            record_id = self._resolve_merge(store, record_id)
        record = store.records.get(record_id)
        if record is None or record.archived != archived:
            return None
        return record

    @staticmethod
    def _resolve_merge(store: ObjectStore, record_id: int) -> int:
        seen = 0
        while record_id in store.merged_into and seen < 50:
            record_id = store.merged_into[record_id]
            seen += 1
        return record_id

    def find_by(self, object_type: str, id_property: str, value: str) -> HsRecord | None:
        store = self.store(object_type)
        if id_property == "hs_object_id":
            return self.get(object_type, int(value)) if value.isdigit() else None
        if id_property == "email" and object_type == "contacts":
            rid = store.by_email.get(value.lower())
            return None if rid is None else self.get(object_type, rid)
        prop = self.properties[object_type].get(id_property)
        if prop is None or not prop.unique:
            raise HubSpotError(400, f"{id_property} is not a unique property; idProperty must "
                               "name a property with unique values", "VALIDATION_ERROR")
        for record in store.records.values():
            if not record.archived and record.properties.get(id_property) == value:
                return record
        return None

    def update(self, object_type: str, record_id: int, properties: dict[str, Any], *,
               system: bool = False, when: datetime | None = None) -> HsRecord:
        """Update a live record; system=True skips validation and read-only checks."""
        record = self.get(object_type, record_id)
        if record is None:
            raise HubSpotError(404, "resource not found", "OBJECT_NOT_FOUND")
        if system:
            clean = {k: "" if v is None else str(v) for k, v in properties.items()}
        else:
            clean, errors = self.validate(object_type, properties)
            if errors:
                raise property_error(errors)
            clean = forward_only_lifecycle(record, clean)
        store = self.store(object_type)
        new_email = clean.get("email", "").lower()
        if object_type == "contacts" and new_email:
            holder = store.by_email.get(new_email)
            if holder is not None and holder != record.id:
                raise HubSpotError(409, f"Contact already exists. Existing ID: {holder}",
                                   "CONFLICT")
        old_email = record.properties.get("email", "").lower()
        for name, value in clean.items():
            if value == "":
                record.properties.pop(name, None)
            else:
                record.properties[name] = value
        if object_type == "contacts" and "email" in clean:
            if old_email and store.by_email.get(old_email) == record.id:
                del store.by_email[old_email]
            if new_email:
                store.by_email[new_email] = record.id
        self._touch(object_type, record, when or self.clock.now())
        return record

    def archive(self, object_type: str, record_id: int) -> bool:
        """Soft-delete: the record moves to the archived set (False if not live)."""
        record = self.get(object_type, record_id, follow_merges=False)
        if record is None:
            return False
        store = self.store(object_type)
        now = self.clock.now()
        record.archived, record.archived_at = True, now
        self._touch(object_type, record, now)
        email = record.properties.get("email", "").lower()
        if email and store.by_email.get(email) == record.id:
            del store.by_email[email]
        return True

    def merge(self, primary_id: int, merged_id: int) -> HsRecord:
        """Merge contact merged_id into primary_id (primary keeps its id, gains merged ids)."""
        store = self.store("contacts")
        primary = self.get("contacts", primary_id, follow_merges=False)
        secondary = self.get("contacts", merged_id, follow_merges=False)
        if primary is None or secondary is None or primary_id == merged_id:
            raise HubSpotError(400, "Merge failed: both objects must exist, be different and "
                               "not archived", "VALIDATION_ERROR")
        for name, value in secondary.properties.items():
            if name not in primary.properties and name not in ("hs_object_id", "email"):
                primary.properties[name] = value
        merged = [x for x in primary.properties.get("hs_merged_object_ids", "").split(";") if x]
        merged.append(str(merged_id))
        primary.properties["hs_merged_object_ids"] = ";".join(merged)
        for to_type, ids in secondary.associations.items():
            for other in ids:
                self.associate("contacts", primary_id, to_type, other)
                self.store(to_type).records[other].associations.get(
                    "contacts", set()).discard(merged_id)
        email = secondary.properties.get("email", "").lower()
        if email and store.by_email.get(email) == merged_id:
            del store.by_email[email]
        del store.records[merged_id]
        store.journal.note(merged_id)
        store.merged_into[merged_id] = primary_id
        for hs_list in self.lists.values():
            if merged_id in hs_list.members:
                hs_list.members.setdefault(primary_id, hs_list.members.pop(merged_id))
        for event in self.events:
            if event.object_id == merged_id:
                event.object_id = primary_id
        self._touch("contacts", primary, self.clock.now())
        return primary

    # ----- owners, lists, events ---------------------------------------------------------
    def add_owner(self, owner: Owner) -> None:
        self.owners[owner.id] = owner

    def create_list(self, name: str, processing_type: str = "MANUAL",
                    list_id: int | None = None) -> HsList:
        if processing_type not in ("MANUAL", "SNAPSHOT", "DYNAMIC"):
            raise HubSpotError(400, f"Invalid processingType {processing_type}")
        if any(existing.name == name for existing in self.lists.values()):
            raise HubSpotError(400, f"A list named '{name}' already exists.",
                               "VALIDATION_ERROR")
        hs_list = HsList(list_id or next(self._list_ids), name, processing_type,
                         self.clock.now())
        self.lists[hs_list.list_id] = hs_list
        return hs_list

    def list_named(self, name: str) -> HsList:
        """The list of that name (case-insensitive, as lists v3's get-by-name)."""
        for hs_list in self.lists.values():
            if hs_list.name.lower() == name.lower():
                return hs_list
        raise HubSpotError(404, f"List does not exist with name {name}.", "OBJECT_NOT_FOUND")

    def get_list(self, list_id: int) -> HsList:
        hs_list = self.lists.get(list_id)
        if hs_list is None:
            raise HubSpotError(404, f"List does not exist with ID {list_id}.",
                               "OBJECT_NOT_FOUND")
        return hs_list

    def change_membership(self, list_id: int, add: list[str], remove: list[str],
                          ) -> dict[str, list[str]]:
        """Add/remove contact ids; DYNAMIC lists refuse manual changes as HubSpot does."""
        hs_list = self.get_list(list_id)
        if hs_list.processing_type == "DYNAMIC":
            raise HubSpotError(400, f"List {list_id} is a DYNAMIC list; memberships of "
                               "DYNAMIC lists cannot be changed manually.", "VALIDATION_ERROR")
        result: dict[str, list[str]] = {"recordIdsAdded": [], "recordIdsRemoved": [],
                                        "recordsIdsAdded": [], "recordIdsMissing": []}
        now = self.clock.now()
        for raw in add:
            record = self.get("contacts", int(raw)) if str(raw).isdigit() else None
            if record is None:
                result["recordIdsMissing"].append(str(raw))
            elif record.id not in hs_list.members:
                hs_list.members[record.id] = now
                result["recordIdsAdded"].append(str(record.id))
        for raw in remove:
            rid = int(raw) if str(raw).isdigit() else -1
            if rid in hs_list.members:
                del hs_list.members[rid]
                result["recordIdsRemoved"].append(str(rid))
            else:
                result["recordIdsMissing"].append(str(raw))
        result["recordsIdsAdded"] = list(result["recordIdsAdded"])
        return result

    def add_event(self, event_type: str, contact_id: int, occurred_at: datetime,
                  properties: dict[str, str]) -> WebEvent:
        event = WebEvent(f"{next(self._event_ids):012d}-sbx", event_type, contact_id,
                         occurred_at, properties)
        key = event_order(event)
        if self._events_sorted and self._event_keys and key < self._event_keys[-1]:
            self._events_sorted = False
            self._event_keys = []
        if self._events_sorted:
            self._event_keys.append(key)
        self.events.append(event)
        return event

    def sorted_events(self) -> list[WebEvent]:
        if not self._events_sorted:
            self.events.sort(key=event_order)
            self._event_keys = [event_order(e) for e in self.events]
            self._events_sorted = True
        return self.events

    def event_keys(self) -> list[tuple[int, str]]:
        """The paging key of each event, aligned with :meth:`sorted_events`."""
        self.sorted_events()
        return self._event_keys


def event_order(event: WebEvent) -> tuple[int, str]:
    """Events are kept in the order the events API pages them: whole milliseconds, then id
    (sorting by the exact instant instead made pages skip and repeat events that share a
    millisecond)."""
    return (event.occurred_at - _EPOCH) // _MS, event.id


def forward_only_lifecycle(record: HsRecord, clean: dict[str, str]) -> dict[str, str]:
    """Lifecycle stage moves forward only: an earlier stage is silently ignored unless the
    property is cleared first (API-FACTS.md; "a direct set to an earlier stage will be
    silently rejected - no error", laotaotie.com/s/fix-lifecycle-stages). Order as HubSpot's
    defaults: subscriber < lead < MQL < SQL < opportunity < customer < evangelist < other."""
    new, old = clean.get("lifecyclestage"), record.properties.get("lifecyclestage")
    if not new or not old or new not in LIFECYCLE_STAGES or old not in LIFECYCLE_STAGES:
        return clean
    if LIFECYCLE_STAGES.index(new) >= LIFECYCLE_STAGES.index(old):
        return clean
    return {k: v for k, v in clean.items() if k != "lifecyclestage"}


# Properties a create must give: a task's hs_timestamp (its due date) is "Required"
# (https://developers.hubspot.com/docs/api-reference/latest/crm/activities/tasks/guide.md).
REQUIRED_ON_CREATE = {"tasks": ("hs_timestamp",)}


def _missing_on_create(object_type: str, clean: dict[str, str]) -> list[dict[str, Any]]:
    missing = [name for name in REQUIRED_ON_CREATE.get(object_type, ()) if not clean.get(name)]
    return [{"isValid": False, "message": f"Property {name} is required", "error": "REQUIRED",
             "name": name, "localizedErrorMessage": f"Property {name} is required"}
            for name in missing]


def property_error(errors: list[dict[str, Any]]) -> HubSpotError:
    """HubSpot's 400 for invalid property values: the list is embedded in the message."""
    import json

    return HubSpotError(400, "Property values were not valid: " + json.dumps(errors),
                        "VALIDATION_ERROR", errors=[{
                            "message": e["message"], "code": e["error"],
                            "context": {"propertyName": [e["name"]]}} for e in errors])


# The sandbox context as the HubSpot emulator sees it: the portal typed, the org not touched.
HubSpotContext: TypeAlias = SandboxContext[Any, HubSpotPortal]
