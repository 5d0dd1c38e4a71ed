"""Validation of API writes: the per-record errors Salesforce gives, before anything is written.

``prepare`` checks one create or update against the org's schema (the user's view of it) and
its rows, and returns either the errors or a :class:`Prepared` write; the org applies
prepared writes only once every record of an allOrNone request has passed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from syncagent.sandbox.salesforce import ids
from syncagent.sandbox.salesforce.schema import PREFIX_TO_OBJECT, STRING_TYPES, FieldDef, SObjectDef
from syncagent.sandbox.salesforce.store import Record, RecordStore
from syncagent.sandbox.salesforce.values import coerce

_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
QUEUE_PREFIX = "00G"                       # a Group (queue) id
BatchKeys = dict[tuple[str, str], int]     # (unique field, lower-cased value) seen in a batch


@dataclass
class WriteError:
    """One entry of a per-record ``errors`` list."""

    code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


@dataclass
class Prepared:
    """A validated write, ready to apply (so allOrNone can check every record first)."""

    obj: SObjectDef
    values: dict[str, Any]
    record_id: str | None = None          # None: create
    unique_keys: dict[str, str] = field(default_factory=dict)


def prepare(store: RecordStore, obj: SObjectDef, body: dict[str, Any], *,
            record_id: str | None, reject: Callable[[], bool],
            batch_keys: BatchKeys | None = None) -> Prepared | list[WriteError]:
    """Validate one create (record_id None) or update; the errors Salesforce would give."""
    existing: Record | None = None
    if record_id is not None:
        found = _existing(store, obj, record_id)
        if isinstance(found, WriteError):
            return [found]
        existing = found
    values, errors = _read_body(obj, body, creating=record_id is None)
    if errors:
        return errors
    if existing is not None and obj.name == "Lead" and existing.get("IsConverted"):
        return [WriteError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")]
    queue_owned = _queue_owned_task(obj, values)
    if queue_owned:
        return queue_owned
    for name, value in values.items():
        errors.extend(_check_value(store, obj.fields[name], value))
    errors.extend(_check_required(obj, values, existing))
    p = Prepared(obj, values, record_id)
    if not errors and obj.name == "CampaignMember" and existing is None:
        errors.extend(_check_member(store, values))
    if not errors and obj.name == "PermissionSetAssignment" and existing is None:
        errors.extend(_check_assignment(store, values))
    if not errors:
        errors.extend(_check_unique(store, p, batch_keys))
    if errors:
        return errors
    if reject():
        return [WriteError("FIELD_CUSTOM_VALIDATION_EXCEPTION",
                           "Record rejected by a validation rule (sandbox fault "
                           "injection: rate_reject)")]
    return p


def _read_body(obj: SObjectDef, body: dict[str, Any], *, creating: bool,
               ) -> tuple[dict[str, Any], list[WriteError]]:
    """The body's values by API field name, coerced, and the field-level errors."""
    values: dict[str, Any] = {}
    readonly: list[str] = []
    errors: list[WriteError] = []
    for key, raw in body.items():
        if key.lower() == "attributes":
            continue
        f = obj.field(key)
        if f is None:
            errors.append(WriteError("INVALID_FIELD",
                                     f"No such column '{key}' on sobject of type {obj.name}"))
            continue
        if f.name == "Id":
            if creating:
                errors.append(WriteError("INVALID_FIELD",
                                         "cannot specify Id in an insert call", ["Id"]))
            continue
        if not (f.createable if creating else f.updateable):
            readonly.append(f.name)
            continue
        value = coerce(f, raw)
        if f.type == "reference" and value is not None and ids.is_valid(value):
            value = ids.to18(value)       # 15-char ids are accepted, 18 are stored
        values[f.name] = value
    if readonly:
        verb = "create" if creating else "update"
        errors.append(WriteError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to {verb} fields: {', '.join(readonly)}. Please check the security "
            "settings of this field and verify that it is read/write for your profile or "
            "permission set.", readonly))
    return values, errors


def _existing(store: RecordStore, obj: SObjectDef, record_id: str) -> Record | WriteError:
    if not ids.is_valid(record_id):
        return WriteError("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: "
                          f"{record_id}", ["Id"])
    if PREFIX_TO_OBJECT.get(record_id[:3]) != obj.name:
        return WriteError("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: "
                          f"{record_id}", ["Id"])
    rec = store.tables[obj.name].get(ids.to18(record_id))
    if rec is None:
        return WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
    if rec.get("IsDeleted"):
        return WriteError("ENTITY_IS_DELETED", "entity is deleted")
    return rec


def _check_value(store: RecordStore, f: FieldDef, value: Any) -> list[WriteError]:
    if value is None:
        return []
    if f.type in STRING_TYPES and f.length and len(value) > f.length:
        return [WriteError("STRING_TOO_LONG", f"{f.label}: data value too large: "
                           f"{value[:100]} (max length={f.length})", [f.name])]
    # "Users can't load unapproved values through the API" ("API Field Properties",
    # https://developer.salesforce.com/docs/platform/object-reference/guide/access-for-fields.html)
    if f.type == "picklist" and f.restricted and value not in f.picklist:
        return [WriteError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                           f"{f.label}: bad value for restricted picklist field: {value}",
                           [f.name])]
    if f.type == "email" and not _EMAIL_RE.match(value):
        return [WriteError("INVALID_EMAIL_ADDRESS",
                           f"{f.label}: invalid email address: {value}", [f.name])]
    if f.type == "reference":
        return _check_reference(store, f, value)
    return []


def _check_reference(store: RecordStore, f: FieldDef, value: str) -> list[WriteError]:
    target = PREFIX_TO_OBJECT.get(value[:3])
    if not ids.is_valid(value) or target not in f.reference_to:
        return [WriteError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}",
                           [f.name])]
    parent = store.tables[target].get(ids.to18(value))
    if parent is None or parent.get("IsDeleted"):
        return [WriteError("INVALID_CROSS_REFERENCE_KEY",
                           f"{f.label}: invalid cross reference id", [f.name])]
    if f.name == "OwnerId" and target == "User" and not parent.get("IsActive", True):
        return [WriteError("INACTIVE_OWNER_OR_USER",
                           f"operation performed with inactive user [{parent['Id']}] as "
                           "owner of the record", [f.name])]
    return []


def _queue_owned_task(obj: SObjectDef, values: dict[str, Any]) -> list[WriteError]:
    """A queue (a Group, ids 00G) owns Leads, Cases and custom objects, never a Task: a task's
    owner is a user ("Queues", Salesforce Help: the supported objects of a queue). The code is
    modelled as the harsher case: the record is refused."""
    owner = values.get("OwnerId")
    if obj.name != "Task" or not isinstance(owner, str) or not owner.startswith(QUEUE_PREFIX):
        return []
    return [WriteError("FIELD_INTEGRITY_EXCEPTION",
                       f"Assigned To ID: a queue cannot own a task: {owner}", ["OwnerId"])]


def _check_required(obj: SObjectDef, values: dict[str, Any],
                    existing: Record | None) -> list[WriteError]:
    """REQUIRED_FIELD_MISSING for required fields left or set empty.

    Non-nillable fields with a default (checkboxes, Status, OwnerId) fall back to it when
    set to null, as Salesforce does.
    """
    missing = []
    for f in obj.fields.values():
        given = f.name in values
        if given and values[f.name] is None and not f.nillable and not f.required:
            if f.type == "boolean":
                values[f.name] = False
            elif f.default is not None:
                values[f.name] = f.default
            elif f.name == "OwnerId" and existing is None:
                del values[f.name]
            else:
                missing.append(f.name)
        elif f.required and ((existing is None and values.get(f.name) is None)
                             or (given and values[f.name] is None)):
            missing.append(f.name)
    if not missing:
        return []
    return [WriteError("REQUIRED_FIELD_MISSING",
                       f"Required fields are missing: [{', '.join(missing)}]", missing)]


def _check_member(store: RecordStore, values: dict[str, Any]) -> list[WriteError]:
    if not values.get("LeadId") and not values.get("ContactId"):
        return [WriteError("REQUIRED_FIELD_MISSING",
                           "Required fields are missing: [LeadId, ContactId]",
                           ["LeadId", "ContactId"])]
    if store.has_member(values):
        return [WriteError("DUPLICATE_VALUE", "Already a campaign member.")]
    return []


def _check_assignment(store: RecordStore, values: dict[str, Any]) -> list[WriteError]:
    """A user holds a permission set once (DUPLICATE_VALUE on a second assignment)."""
    pair = (values.get("AssigneeId"), values.get("PermissionSetId"))
    for rec in store.tables["PermissionSetAssignment"].values():
        if (rec.get("AssigneeId"), rec.get("PermissionSetId")) == pair:
            return [WriteError("DUPLICATE_VALUE", "Duplicate PermissionSetAssignment. "
                               f"Assignee: {pair[0]}; Permission Set: {pair[1]}")]
    return []


def _check_unique(store: RecordStore, p: Prepared, batch_keys: BatchKeys | None,
                  ) -> list[WriteError]:
    for (name, fname) in store.unique:
        if name != p.obj.name or p.values.get(fname) is None:
            continue
        key = str(p.values[fname]).lower()
        owner = store.unique[(name, fname)].get(key)
        if owner is not None and owner != (p.record_id and ids.to18(p.record_id)):
            return [WriteError("DUPLICATE_VALUE", f"duplicate value found: {fname} "
                               f"duplicates value on record with id: {owner}", [fname])]
        if batch_keys is not None:
            if (fname, key) in batch_keys:
                return [WriteError("DUPLICATE_VALUE", f"duplicate value found: {fname} "
                                   "duplicates value on record with id: <unknown>",
                                   [fname])]
            batch_keys[(fname, key)] = 1
        p.unique_keys[fname] = key
    return []

