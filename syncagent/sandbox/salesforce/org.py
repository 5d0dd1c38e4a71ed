"""The emulated Salesforce org: records, validation, sessions, API usage and query cursors.

Callers hold ``SandboxContext.lock`` around every method (the router does, seeding and the
simulation do). Records are plain dicts keyed by API field name; datetimes are aware UTC
``datetime`` objects (system stamps at whole seconds, as Salesforce stores them), dates are
``date`` objects, ids are 18-char.
"""

from __future__ import annotations

import bisect
import re
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import islice
from operator import itemgetter
from typing import Any

from syncagent.sandbox.common import SalesforceCredentials, SandboxClock, SandboxConfig
from syncagent.sandbox.salesforce import ids
from syncagent.sandbox.salesforce.fls import FieldAccess, OrgSchema
from syncagent.sandbox.salesforce.schema import (
    OBJECTS,
    PREFIX_TO_OBJECT,
    STRING_TYPES,
    FieldDef,
    SObjectDef,
)
from syncagent.sandbox.salesforce.soql import (
    Cond,
    FieldPath,
    Query,
    compile_condition,
    sort_records,
)
from syncagent.sandbox.salesforce.values import coerce, seed_value, wire

Record = dict[str, Any]
DELETED_RETENTION = timedelta(days=15)       # recycle bin: getDeleted/queryAll horizon
CURSOR_IDLE_S = 15 * 60
MAX_CURSORS = 50
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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


@dataclass
class Cursor:
    """The server side of a nextRecordsUrl (idle time is real time, as for the JWT clock:
    a simulation jumping the sandbox clock must not kill a cursor being read)."""

    rows: list[Record]
    query: Query
    batch: int
    touched: float          # time.monotonic()


class ApiUsage:
    """API requests in the rolling last 24 hours, in one-minute buckets."""

    def __init__(self) -> None:
        self._buckets: deque[list[int]] = deque()      # [minute, count]
        self._total = 0

    def _evict(self, minute: int) -> None:
        while self._buckets and self._buckets[0][0] <= minute - 24 * 60:
            self._total -= self._buckets.popleft()[1]

    def used(self, now: datetime) -> int:
        self._evict(int(now.timestamp() // 60))
        return self._total

    def add(self, now: datetime, n: int = 1) -> None:
        minute = int(now.timestamp() // 60)
        self._evict(minute)
        if self._buckets and self._buckets[-1][0] == minute:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([minute, n])
        self._total += n


def _stamp(clock: SandboxClock) -> datetime:
    return clock.now().replace(microsecond=0)


class SalesforceOrg:
    """All state of the emulated org. Not thread-safe by itself: hold the sandbox lock."""

    def __init__(self, clock: SandboxClock, credentials: SalesforceCredentials,
                 config: SandboxConfig | None = None) -> None:
        self.clock = clock
        self.credentials = credentials
        self.config = config or SandboxConfig()
        self.schema = OrgSchema(fresh=self.config.fresh)
        # SOAP login() is off by default in orgs created from Winter '26, and the OAuth
        # username-password flow is blocked by default in orgs created since Summer '23
        # (login(): https://developer.salesforce.com/docs/platform/api/guide/sforce-api-calls-login.html;
        # OauthOidcSettings.blockOAuthUnPwFlow in the Metadata API Developer Guide).
        self.soap_login_enabled = not self.config.fresh
        self.oauth_password_enabled = not self.config.fresh
        self.deployments: dict[str, Any] = {}     # Metadata API deploy id -> its result
        sid = credentials.session_id
        self.org_id = sid.split("!", 1)[0] if "!" in sid else "00D8c000000SBOX"
        self.created_at = _stamp(clock)
        self._tables: dict[str, dict[str, Record]] = {name: {} for name in OBJECTS}
        self._deleted_at: dict[str, dict[str, datetime]] = {name: {} for name in OBJECTS}
        # Time of the last physically deleted record (earliestDateAvailable); nothing is
        # purged yet, so the horizon is the 15-day recycle-bin window itself.
        self._purged_until: dict[str, datetime] = {
            name: self.created_at - DELETED_RETENTION for name in OBJECTS}
        self._id_factories = {name: ids.IdFactory(obj.key_prefix) for name, obj in
                              OBJECTS.items()}
        self._unique: dict[tuple[str, str], dict[str, str]] = {
            (name, f.name): {} for name, obj in OBJECTS.items() for f in obj.fields.values()
            if f.unique}
        self._members: dict[tuple[str | None, str | None], str] = {}   # (campaign, person)
        self._children: dict[str, list[str]] = {}   # person id -> activity/member ids
        self._order: dict[str, list[Record]] = {}
        self._order_dirty: set[str] = set(OBJECTS)
        self._journal: list[tuple[str, str, Record | None, datetime | None]] | None = None
        self._journal_depth = 0
        self.sessions: dict[str, int] = {sid: 0}
        self.usage = ApiUsage()
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self.integration_user_id = self.insert("User", [{
            "Username": credentials.username, "Email": credentials.username,
            "FirstName": "Integration", "LastName": "User", "Alias": "integ",
            "IsActive": True}])[0]
        for table in self._tables.values():   # the integration user created itself
            for rec in table.values():
                rec["CreatedById"] = rec["LastModifiedById"] = self.integration_user_id
        if not self.config.fresh:
            self._grant_everything()

    def _grant_everything(self) -> None:
        """A configured org: set-up ran, so one permission set, assigned to the integration
        user, grants read and edit on every custom field."""
        [permset_id] = self.insert("PermissionSet", [{
            "Name": "Syncagent_Integration", "Label": "syncagent integration"}])
        for name, obj in self.schema.objects.items():
            for f in obj.fields.values():
                if f.custom:
                    self.schema.grant(permset_id, f"{name}.{f.name}", FieldAccess(True, True))
        self.insert("PermissionSetAssignment", [{"AssigneeId": self.integration_user_id,
                                                 "PermissionSetId": permset_id}])
        self.schema.assign(permset_id)

    # ------------------------------------------------------------ contract API

    @property
    def api_calls_today(self) -> int:
        """API requests counted in the rolling 24-hour window."""
        return self.usage.used(self.clock.now())

    def insert(self, sobject: str, rows: list[dict[str, Any]]) -> list[str]:
        """Fast trusted bulk insert for seeding: no validation beyond field names and types.

        Assigns Id when absent. CreatedDate and LastModifiedDate may be backdated (aware
        datetimes or ISO strings). SystemModstamp, unless given: for history from before the
        org existed (seeding) it is LastModifiedDate, so incremental reads see a spread of
        stamps as in an org used for a year; for rows inserted later (simulation) it is the
        insert time, as Salesforce stamps it, so a backdated row is never hidden behind a
        reader's cursor.
        A User row with the integration user's Username fills in that user (it exists from
        the start because logins and API writes need it).
        """
        obj = self._obj(sobject)
        table = self._tables[obj.name]
        now = _stamp(self.clock)
        template = self._defaults(obj)
        typed = [f for f in obj.fields.values() if f.type in ("datetime", "date")]
        new_ids = []
        factory = self._id_factories[obj.name]
        for row in rows:
            if obj.name == "User" and self._merge_integration_user(row):
                new_ids.append(self.integration_user_id)
                continue
            row = self._existing_fields(obj, row)
            rec = template.copy()
            owner = row.get("OwnerId")
            if isinstance(owner, str) and owner.startswith("005"):
                rec["CreatedById"] = rec["LastModifiedById"] = owner   # made by its owner
            rec.update(row)
            for f in typed:
                if rec.get(f.name) is not None:
                    rec[f.name] = seed_value(f, rec[f.name])
            rec["Id"] = ids.to18(rec["Id"]) if rec.get("Id") else factory.next()
            rec.setdefault("CreatedDate", None)
            if rec["CreatedDate"] is None:
                rec["CreatedDate"] = now
            if rec.get("LastModifiedDate") is None:
                rec["LastModifiedDate"] = rec["CreatedDate"]
            if rec.get("SystemModstamp") is None:
                modified = rec["LastModifiedDate"]
                rec["SystemModstamp"] = modified if modified < self.created_at else \
                    max(now, modified)
            self._derive(obj, rec)
            if rec["Id"] in table:
                raise ValueError(f"SalesforceOrg.insert({obj.name}): duplicate Id {rec['Id']}")
            table[rec["Id"]] = rec
            self._index_add(obj, rec)
            if rec.get("IsDeleted"):
                self._deleted_at[obj.name][rec["Id"]] = rec["SystemModstamp"]
            new_ids.append(rec["Id"])
        self._order_dirty.add(obj.name)
        return new_ids

    @staticmethod
    def _existing_fields(obj: SObjectDef, row: dict[str, Any]) -> dict[str, Any]:
        """The row without values for catalogue fields this org does not have (seeding and
        simulations write the agent's fields, which a fresh org lacks); a name the catalogue
        does not know is a bug in the caller."""
        unknown = [k for k in row if k not in OBJECTS[obj.name].fields]
        if unknown:
            raise ValueError(f"SalesforceOrg({obj.name}): unknown field(s) {unknown}; the "
                             f"fields are {sorted(OBJECTS[obj.name].fields)}")
        if all(k in obj.fields for k in row):
            return row
        return {k: v for k, v in row.items() if k in obj.fields}

    def _merge_integration_user(self, row: dict[str, Any]) -> bool:
        integ = getattr(self, "integration_user_id", None)
        username = str(row.get("Username") or "").lower()
        if integ is None or username != self.credentials.username.lower():
            return False
        user = self.schema.objects["User"]
        values = self._existing_fields(user, {k: v for k, v in row.items()
                                              if k not in ("Id", "Username")})
        rec = self._tables["User"][integ]
        created = values.pop("CreatedDate", None)
        self._apply_update(user, rec, {k: seed_value(user.fields[k], v)
                                       for k, v in values.items()})
        if created is not None:
            rec["CreatedDate"] = seed_value(user.fields["CreatedDate"], created)
        return True

    def update(self, sobject: str, record_id: str, fields: dict[str, Any], *,
               system: bool = False, by: str | None = None,
               stamp_at: datetime | None = None) -> None:
        """A trusted edit (a rep's change, or a system-side one when ``system``).

        SystemModstamp always moves; LastModifiedDate only for user edits, which are made by
        ``by`` (a User id) or else by the record's owner, so a reader can tell a person's edit
        from the integration user's (API writes are the integration user's).
        ``stamp_at`` emulates a long transaction that commits late: the change becomes
        visible now but carries an older SystemModstamp (readers need a lookback).
        """
        stamps = {"SystemModstamp", "LastModifiedDate", "CreatedDate"} & set(fields)
        if stamps:
            raise ValueError(f"SalesforceOrg.update: {sorted(stamps)} are set by the org; "
                             "pass stamp_at= for a late-committing change")
        obj = self._obj(sobject)
        rec = self._tables[obj.name].get(ids.to18(record_id))
        if rec is None:
            raise KeyError(f"{obj.name} {record_id} does not exist")
        values = {name: seed_value(obj.fields[name], raw)
                  for name, raw in self._existing_fields(obj, fields).items()}
        owner = rec.get("OwnerId")
        editor = by or (owner if isinstance(owner, str) and owner.startswith("005") else None)
        self._apply_update(obj, rec, values, system=system, editor=editor, stamp_at=stamp_at)

    def delete(self, sobject: str, record_id: str) -> None:
        """Soft-delete into the recycle bin (queryAll and /deleted still see it)."""
        obj = self._obj(sobject)
        rec = self._tables[obj.name].get(ids.to18(record_id))
        if rec is None or rec.get("IsDeleted"):
            raise KeyError(f"{obj.name} {record_id} does not exist or is already deleted")
        self._apply_delete(obj, rec)

    def convert_lead(self, lead_id: str, *, status: str | None = None,
                     account_id: str | None = None) -> str:
        """Convert a lead as a rep would: a Contact (and an Account unless given) is created,
        the lead's activities and campaign memberships move to the contact, and the lead
        becomes read-only (IsConverted). Returns the new Contact id."""
        lead = self._tables["Lead"].get(ids.to18(lead_id))
        if lead is None or lead.get("IsDeleted") or lead.get("IsConverted"):
            raise KeyError(f"Lead {lead_id} does not exist, is deleted or already converted")
        if account_id is None:
            [account_id] = self.insert("Account", [{
                "Name": lead.get("Company") or lead.get("Name"), "Website": lead.get("Website"),
                "Industry": lead.get("Industry"), "AnnualRevenue": lead.get("AnnualRevenue"),
                "NumberOfEmployees": lead.get("NumberOfEmployees"),
                "BillingCountry": lead.get("Country"), "BillingState": lead.get("State"),
                "BillingCity": lead.get("City"), "OwnerId": lead.get("OwnerId")}])
        copied = ("FirstName", "LastName", "Salutation", "Title", "Email", "Phone",
                  "MobilePhone", "LeadSource", "Description", "HasOptedOutOfEmail", "OwnerId",
                  "Lead_Grade__c", "Lead_Score__c", "Lifecycle_Stage__c", "Nurture_Track__c",
                  "Segment__c", "Score_Reasons__c", "MQL_Date__c")
        contact = {name: lead.get(name) for name in copied
                   if name in self.schema.objects["Contact"].fields}
        if status is None:   # the org's converted status: a new org has only the standard one
            statuses = self.schema.objects["Lead"].fields["Status"].picklist
            status = "Qualified" if "Qualified" in statuses else "Closed - Converted"
        contact.update(AccountId=account_id, MailingCountry=lead.get("Country"),
                       MailingState=lead.get("State"), MailingCity=lead.get("City"))
        [contact_id] = self.insert("Contact", [contact])
        for child_id in list(self._children.get(lead["Id"], ())):
            child_name = PREFIX_TO_OBJECT[child_id[:3]]
            moved = {"ContactId": contact_id, "LeadId": None} if child_name == \
                "CampaignMember" else {"WhoId": contact_id}
            self._apply_update(self.schema.objects[child_name],
                               self._tables[child_name][child_id], moved, system=True)
        self._apply_update(self.schema.objects["Lead"], lead, {
            "IsConverted": True, "Status": status, "ConvertedDate": _stamp(self.clock).date(),
            "ConvertedContactId": contact_id, "ConvertedAccountId": account_id})
        return contact_id

    def get(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        """A copy of the stored record (deleted ones too, with IsDeleted true), or None."""
        obj = self._obj(sobject)
        rec = self._tables[obj.name].get(ids.to18(record_id)) if ids.is_valid(
            record_id) else None
        return dict(rec) if rec is not None else None

    def records(self, sobject: str) -> Iterable[dict[str, Any]]:
        """Every stored record of the object (live dicts: read, do not mutate)."""
        return list(self._tables[self._obj(sobject).name].values())

    # ------------------------------------------------------------ helpers

    def _obj(self, sobject: str) -> SObjectDef:
        obj = self.schema.objects.get(sobject)
        if obj is None:
            raise ValueError(f"unknown sObject {sobject!r}; known: {sorted(self.schema.objects)}")
        return obj

    def _defaults(self, obj: SObjectDef) -> Record:
        rec: Record = {name: f.default for name, f in obj.fields.items()}
        if "IsDeleted" in rec:
            rec["IsDeleted"] = False
        if "OwnerId" in rec:
            rec["OwnerId"] = getattr(self, "integration_user_id", None)
        integ = getattr(self, "integration_user_id", None)
        rec["CreatedById"] = rec["LastModifiedById"] = integ
        return rec

    @staticmethod
    def _derive(obj: SObjectDef, rec: Record) -> None:
        """Fields Salesforce computes from others."""
        if obj.name in ("Lead", "Contact", "User"):
            rec["Name"] = " ".join(p for p in (rec.get("FirstName"), rec.get("LastName")) if p)
        if obj.name == "Task":
            rec["IsClosed"] = rec.get("Status") == "Completed"
        if obj.name == "CampaignMember":
            rec["HasResponded"] = rec.get("Status") in ("Responded", "Attended") or bool(
                rec.get("HasResponded"))

    def _index_add(self, obj: SObjectDef, rec: Record) -> None:
        for (name, fname), index in self._unique.items():
            if name == obj.name and rec.get(fname) is not None:
                index[str(rec[fname]).lower()] = rec["Id"]
        if obj.name == "CampaignMember" and not rec.get("IsDeleted"):
            self._members[_member_key(rec)] = rec["Id"]
        if obj.name in _CASCADE_FIELDS and not rec.get("IsDeleted"):
            for fname in _CASCADE_FIELDS[obj.name]:
                parent = rec.get(fname)
                if parent:
                    self._children.setdefault(parent, []).append(rec["Id"])

    def _index_remove(self, obj: SObjectDef, rec: Record) -> None:
        for (name, fname), index in self._unique.items():
            if name == obj.name and rec.get(fname) is not None:
                key = str(rec[fname]).lower()
                if index.get(key) == rec["Id"]:
                    del index[key]
        if obj.name == "CampaignMember" and self._members.get(_member_key(rec)) == rec["Id"]:
            del self._members[_member_key(rec)]
        if obj.name in _CASCADE_FIELDS:
            for fname in _CASCADE_FIELDS[obj.name]:
                children = self._children.get(rec.get(fname) or "")
                if children and rec["Id"] in children:
                    children.remove(rec["Id"])

    def find_unique(self, obj: SObjectDef, fname: str, value: Any) -> str | None:
        index = self._unique.get((obj.name, fname))
        return index.get(str(value).lower()) if index is not None else None

    def lookup(self, record_id: str | None) -> Record | None:
        """Any record by id (parents in SOQL relationship paths)."""
        if not record_id:
            return None
        name = PREFIX_TO_OBJECT.get(record_id[:3])
        return self._tables[name].get(record_id) if name else None

    def table(self, sobject: str) -> dict[str, Record]:
        return self._tables[sobject]

    def _journal_save(self, obj: SObjectDef, record_id: str) -> None:
        if self._journal is not None:
            rec = self._tables[obj.name].get(record_id)
            self._journal.append((obj.name, record_id, dict(rec) if rec else None,
                                  self._deleted_at[obj.name].get(record_id)))

    def savepoint(self) -> int:
        """Start (or nest into) before-image recording; returns the mark to roll back to."""
        if self._journal is None:
            self._journal = []
        self._journal_depth += 1
        return len(self._journal)

    def release(self, mark: int) -> None:
        """Keep the writes made since the savepoint."""
        del mark
        self._journal_depth -= 1
        if self._journal_depth == 0:
            self._journal = None

    def rollback_to(self, mark: int) -> None:
        """Undo every write made since the savepoint, newest first, then release it."""
        journal = self._journal or []
        undo, journal[mark:] = journal[mark:], []
        for name, record_id, before, deleted_at in reversed(undo):
            self._restore(self.schema.objects[name], record_id, before, deleted_at)
        self.release(mark)

    def _restore(self, obj: SObjectDef, record_id: str, before: Record | None,
                 deleted_at: datetime | None) -> None:
        table = self._tables[obj.name]
        current = table.get(record_id)
        if current is not None:
            self._index_remove(obj, current)
        if before is None:
            table.pop(record_id, None)
        else:
            if current is not None:
                current.clear()
                current.update(before)
            else:
                table[record_id] = before
            self._index_add(obj, table[record_id])
        if deleted_at is None:
            self._deleted_at[obj.name].pop(record_id, None)
        else:
            self._deleted_at[obj.name][record_id] = deleted_at
        self._order_dirty.add(obj.name)
        self._order.pop(obj.name, None)

    # ------------------------------------------------------------ mutations

    def _apply_create(self, p: Prepared, user_id: str | None = None) -> str:
        obj = p.obj
        now = _stamp(self.clock)
        rec = self._defaults(self.schema.objects[obj.name])   # p.obj may be the user's view
        rec.update(p.values)
        rec["Id"] = self._id_factories[obj.name].next()
        rec["CreatedDate"] = rec["LastModifiedDate"] = rec["SystemModstamp"] = now
        if obj.name == "Task" and rec.get("Status") == "Completed":
            rec["CompletedDateTime"] = now
        self._derive(obj, rec)
        self._journal_save(obj, rec["Id"])
        self._tables[obj.name][rec["Id"]] = rec
        self._index_add(obj, rec)
        self._order_dirty.add(obj.name)
        return str(rec["Id"])

    def _apply_update(self, obj: SObjectDef, rec: Record, values: dict[str, Any], *,
                      system: bool = False, editor: str | None = None,
                      stamp_at: datetime | None = None) -> None:
        self._journal_save(obj, rec["Id"])
        self._index_remove(obj, rec)
        now = _stamp(self.clock)
        stamp = max(now, rec["SystemModstamp"]) if stamp_at is None else \
            stamp_at.astimezone(UTC).replace(microsecond=0)
        was_completed = rec.get("Status") == "Completed"
        rec.update(values)
        rec["SystemModstamp"] = stamp
        if not system:
            rec["LastModifiedDate"] = max(now, rec["LastModifiedDate"]) if stamp_at is None \
                else stamp
            rec["LastModifiedById"] = editor or self.integration_user_id
        if obj.name == "Task" and not was_completed and rec.get("Status") == "Completed":
            rec["CompletedDateTime"] = now
        self._derive(obj, rec)
        self._index_add(obj, rec)
        self._order_dirty.add(obj.name)

    def _apply_delete(self, obj: SObjectDef, rec: Record) -> None:
        self._journal_save(obj, rec["Id"])
        now = _stamp(self.clock)
        rec["IsDeleted"] = True
        rec["SystemModstamp"] = max(now, rec["SystemModstamp"])
        self._deleted_at[obj.name][rec["Id"]] = now
        self._index_remove(obj, rec)
        self._order_dirty.add(obj.name)
        if obj.name in ("Lead", "Contact"):
            # As in Salesforce: a person's activities and campaign memberships go with it.
            for child_id in list(self._children.get(rec["Id"], ())):
                child_obj = self.schema.objects[PREFIX_TO_OBJECT[child_id[:3]]]
                child = self._tables[child_obj.name].get(child_id)
                if child is not None and not child.get("IsDeleted"):
                    self._apply_delete(child_obj, child)

    def purge(self, sobject: str) -> None:
        """Empty the recycle bin of records deleted more than 15 days ago."""
        horizon = _stamp(self.clock) - DELETED_RETENTION
        deleted = self._deleted_at[sobject]
        old = [rid for rid, when in deleted.items() if when < horizon]
        if not old:
            return
        table = self._tables[sobject]
        for rid in old:
            self._purged_until[sobject] = max(self._purged_until[sobject], deleted.pop(rid))
            table.pop(rid, None)
        self._order.pop(sobject, None)
        self._order_dirty.add(sobject)

    def earliest_date_available(self, sobject: str) -> datetime:
        return self._purged_until[sobject]

    def deleted_between(self, sobject: str, start: datetime, end: datetime,
                        ) -> list[tuple[str, datetime]]:
        return sorted(((rid, when) for rid, when in self._deleted_at[sobject].items()
                       if start <= when <= end), key=lambda item: (item[1], item[0]))

    # ------------------------------------------------------------ validation

    def prepare(self, obj: SObjectDef, body: dict[str, Any], *, record_id: str | None,
                reject: Callable[[], bool], batch_keys: dict[tuple[str, str], int] | None = None,
                ) -> Prepared | list[WriteError]:
        """Validate one create (record_id None) or update; the errors Salesforce would give."""
        existing: Record | None = None
        if record_id is not None:
            found = self._existing(obj, record_id)
            if isinstance(found, WriteError):
                return [found]
            existing = found
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
                if record_id is None:
                    errors.append(WriteError("INVALID_FIELD",
                                             "cannot specify Id in an insert call", ["Id"]))
                continue
            if not (f.createable if record_id is None else f.updateable):
                readonly.append(f.name)
                continue
            value = coerce(f, raw)
            if f.type == "reference" and value is not None and ids.is_valid(value):
                value = ids.to18(value)       # 15-char ids are accepted, 18 are stored
            values[f.name] = value
        if readonly:
            verb = "create" if record_id is None else "update"
            errors.append(WriteError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to {verb} fields: {', '.join(readonly)}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.", readonly))
        if errors:
            return errors
        if existing is not None and obj.name == "Lead" and existing.get("IsConverted"):
            return [WriteError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")]
        for name, value in values.items():
            errors.extend(self._check_value(obj.fields[name], value))
        errors.extend(self._check_required(obj, values, existing))
        p = Prepared(obj, values, record_id)
        if not errors and obj.name == "CampaignMember" and existing is None:
            errors.extend(self._check_member(values))
        if not errors and obj.name == "PermissionSetAssignment" and existing is None:
            errors.extend(self._check_assignment(values))
        if not errors:
            errors.extend(self._check_unique(p, batch_keys))
        if errors:
            return errors
        if reject():
            return [WriteError("FIELD_CUSTOM_VALIDATION_EXCEPTION",
                               "Record rejected by a validation rule (sandbox fault "
                               "injection: rate_reject)")]
        return p

    def _existing(self, obj: SObjectDef, record_id: str) -> Record | WriteError:
        if not ids.is_valid(record_id):
            return WriteError("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: "
                              f"{record_id}", ["Id"])
        if PREFIX_TO_OBJECT.get(record_id[:3]) != obj.name:
            return WriteError("MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: "
                              f"{record_id}", ["Id"])
        rec = self._tables[obj.name].get(ids.to18(record_id))
        if rec is None:
            return WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if rec.get("IsDeleted"):
            return WriteError("ENTITY_IS_DELETED", "entity is deleted")
        return rec

    def _check_value(self, f: FieldDef, value: Any) -> list[WriteError]:
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
            return self._check_reference(f, value)
        return []

    def _check_reference(self, f: FieldDef, value: str) -> list[WriteError]:
        target = PREFIX_TO_OBJECT.get(value[:3])
        if not ids.is_valid(value) or target not in f.reference_to:
            return [WriteError("MALFORMED_ID", f"{f.label}: id value of incorrect type: {value}",
                               [f.name])]
        parent = self._tables[target].get(ids.to18(value))
        if parent is None or parent.get("IsDeleted"):
            return [WriteError("INVALID_CROSS_REFERENCE_KEY",
                               f"{f.label}: invalid cross reference id", [f.name])]
        if f.name == "OwnerId" and target == "User" and not parent.get("IsActive", True):
            return [WriteError("INACTIVE_OWNER_OR_USER",
                               f"operation performed with inactive user [{parent['Id']}] as "
                               "owner of the record", [f.name])]
        return []

    @staticmethod
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

    def _check_member(self, values: dict[str, Any]) -> list[WriteError]:
        if not values.get("LeadId") and not values.get("ContactId"):
            return [WriteError("REQUIRED_FIELD_MISSING",
                               "Required fields are missing: [LeadId, ContactId]",
                               ["LeadId", "ContactId"])]
        if _member_key(values) in self._members:
            return [WriteError("DUPLICATE_VALUE", "Already a campaign member.")]
        return []

    # ------------------------------------------------------------ schema changes

    def add_field(self, obj_name: str, f: FieldDef) -> bool:
        """Create (True) or change (False) a field; records get its default, as Salesforce
        gives existing rows the default of a new field."""
        before = self.schema.put_field(obj_name, f)
        table = self._tables[obj_name]
        if before is None:
            for rec in table.values():
                rec.setdefault(f.name, f.default)
        if f.unique and (obj_name, f.name) not in self._unique:
            index = self._unique[(obj_name, f.name)] = {}
            for rec in table.values():
                if rec.get(f.name) is not None:
                    index[str(rec[f.name]).lower()] = rec["Id"]
        return before is None

    def remove_field(self, obj_name: str, field_name: str) -> bool:
        """Delete a field and its values (a sandbox control: an org without that field)."""
        f = self.schema.drop_field(obj_name, field_name)
        if f is None:
            return False
        for rec in self._tables[obj_name].values():
            rec.pop(f.name, None)
        self._unique.pop((obj_name, f.name), None)
        self.cursors.clear()     # their serializers would read the field
        return True

    def _check_assignment(self, values: dict[str, Any]) -> list[WriteError]:
        """A user holds a permission set once (DUPLICATE_VALUE on a second assignment)."""
        pair = (values.get("AssigneeId"), values.get("PermissionSetId"))
        for rec in self._tables["PermissionSetAssignment"].values():
            if (rec.get("AssigneeId"), rec.get("PermissionSetId")) == pair:
                return [WriteError("DUPLICATE_VALUE", "Duplicate PermissionSetAssignment. "
                                   f"Assignee: {pair[0]}; Permission Set: {pair[1]}")]
        return []

    def _check_unique(self, p: Prepared, batch_keys: dict[tuple[str, str], int] | None,
                      ) -> list[WriteError]:
        for (name, fname) in self._unique:
            if name != p.obj.name or p.values.get(fname) is None:
                continue
            key = str(p.values[fname]).lower()
            owner = self._unique[(name, fname)].get(key)
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

    def apply(self, p: Prepared) -> tuple[str, bool]:
        """Write a prepared record: (id, created)."""
        if p.record_id is None:
            record_id = self._apply_create(p)
            if p.obj.name == "PermissionSetAssignment" and \
                    p.values.get("AssigneeId") == self.integration_user_id:
                self.schema.assign(str(p.values["PermissionSetId"]))
            return record_id, True
        rec = self._tables[p.obj.name][ids.to18(p.record_id)]
        self._apply_update(p.obj, rec, p.values)
        return str(rec["Id"]), False

    def api_delete(self, record_id: str, expected: SObjectDef | None = None,
                   ) -> WriteError | None:
        """Delete through the API: None, or the per-record error."""
        name = PREFIX_TO_OBJECT.get(record_id[:3]) if ids.is_valid(record_id) else None
        if name is None or (expected is not None and name != expected.name):
            return WriteError("MALFORMED_ID", f"malformed id {record_id}")
        obj = self.schema.objects[name]
        if not obj.deletable:
            return WriteError("INVALID_ID_FIELD", f"{name} records cannot be deleted")
        rec = self._tables[name].get(ids.to18(record_id))
        if rec is None:
            return WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if rec.get("IsDeleted"):
            return WriteError("ENTITY_IS_DELETED", "entity is deleted")
        self._apply_delete(obj, rec)
        return None

    # ------------------------------------------------------------ queries

    def ordered(self, sobject: str) -> list[Record]:
        """Records sorted by (SystemModstamp, Id): the index behind modstamp range queries."""
        table = self._tables[sobject]
        cached = self._order.get(sobject)
        if cached is None or len(cached) != len(table):
            cached = list(table.values())
            self._order_dirty.add(sobject)
        if sobject in self._order_dirty:
            cached.sort(key=lambda r: (r["SystemModstamp"], r["Id"]))
            self._order[sobject] = cached
            self._order_dirty.discard(sobject)
        return cached

    def run_query(self, query: Query, *, include_deleted: bool) -> list[Record]:
        """Matching records, in the query's order, after OFFSET and LIMIT."""
        name = query.obj.name
        self.purge(name)
        candidates, presorted = self._candidates(query)
        now = self.clock.now()
        exact = presorted and _exact_modstamp_range(query.where)
        pred = compile_condition(query.where, self.lookup, now) if query.where and not exact \
            else None
        # Deleted rows are few and all listed in _deleted_at: skip the per-row check when the
        # recycle bin is empty (a page over 100,000 rows is in the hot path).
        if not include_deleted and query.obj.deletable and self._deleted_at[name]:
            live = pred
            pred = (lambda r: not r["IsDeleted"]) if live is None else \
                (lambda r: not r["IsDeleted"] and live(r))
        in_order = presorted and _is_modstamp_order(query)
        if in_order and query.limit is not None:
            # Already in (SystemModstamp, Id) order: stop at OFFSET + LIMIT matches.
            wanted = query.offset + query.limit
            rows = list(islice((r for r in candidates if pred is None or pred(r)), wanted))
            return rows[query.offset:]
        rows = list(candidates) if pred is None else [r for r in candidates if pred(r)]
        if query.order and not in_order:
            sort_records(rows, query.order, self.lookup)
        if query.offset or query.limit is not None:
            end = None if query.limit is None else query.offset + query.limit
            rows = rows[query.offset:end]
        return rows

    def _candidates(self, query: Query) -> tuple[list[Record], bool]:
        """A narrowed candidate list (via the modstamp index or ids), and whether it is sorted
        by (SystemModstamp, Id). Candidates are a superset: the full predicate still runs."""
        name = query.obj.name
        id_values = _id_filter(_top_level(query.where))
        if id_values is not None:
            table = self._tables[name]
            return [table[i] for i in sorted(id_values) if i in table], False
        bounds = _modstamp_bounds(query.where) if query.where is not None else None
        if bounds is None and not _is_modstamp_order(query):
            return list(self._tables[name].values()), False
        ordered = self.ordered(name)
        lo, hi = 0, len(ordered)
        if bounds is not None:
            low, high = bounds
            if low is not None:
                lo = bisect.bisect_left(ordered, low, key=_modstamp_key)
            if high is not None:
                hi = bisect.bisect_right(ordered, high, key=_modstamp_key)
        if query.where is not None and _exact_modstamp_range(query.where):
            # Only strict bounds remain: trim rows equal to them (cheap, both ends).
            for cond in _top_level(query.where):
                value = cond.literals[0].value
                if cond.operator == ">":
                    lo = max(lo, bisect.bisect_right(ordered, value, key=_modstamp_key))
                elif cond.operator == "<":
                    hi = min(hi, bisect.bisect_left(ordered, value, key=_modstamp_key))
        return ordered[lo:max(lo, hi)], True

    # ------------------------------------------------------------ sessions & cursors

    def new_session(self) -> str:
        sid = f"{self.org_id}!AQ" + secrets.token_urlsafe(72)[:96]
        self.sessions[sid] = 0
        return sid

    def open_cursor(self, rows: list[Record], query: Query, batch: int) -> str:
        locator = "01g" + secrets.token_hex(8)[:15].upper()
        while len(self.cursors) >= MAX_CURSORS:
            self.cursors.popitem(last=False)
        self.cursors[locator] = Cursor(rows, query, batch, time.monotonic())
        return locator

    def cursor(self, locator: str) -> Cursor | None:
        cur = self.cursors.get(locator)
        now = time.monotonic()
        if cur is None or now - cur.touched > CURSOR_IDLE_S:
            self.cursors.pop(locator, None)
            return None
        cur.touched = now
        self.cursors.move_to_end(locator)
        return cur

    def serializer(self, query_fields: list[FieldPath], obj_name: str, version: str,
                   ) -> Serializer:
        """A function turning a stored record into the REST JSON for the selected fields."""
        return _build_serializer(_field_tree(query_fields), obj_name, version, self.lookup)

    def full_record(self, obj: SObjectDef, rec: Record, version: str,
                    only: list[str] | None = None) -> dict[str, Any]:
        """GET /sobjects/X/{id}: every field (or ?fields=...), wire-formatted."""
        out: dict[str, Any] = {"attributes": {
            "type": obj.name, "url": f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}"}}
        for f in obj.fields.values():
            if only is None or f.name in only:
                out[f.name] = wire(f, rec.get(f.name))
        return out


# ---------------------------------------------------------------- query helpers

_CASCADE_FIELDS = {"Task": ("WhoId",), "Event": ("WhoId",),
                   "CampaignMember": ("LeadId", "ContactId")}


def _member_key(rec: Record) -> tuple[str | None, str | None]:
    person = rec.get("LeadId") or rec.get("ContactId")
    campaign = rec.get("CampaignId")
    return (ids.to18(campaign) if campaign else None), (ids.to18(person) if person else None)


def _modstamp_key(rec: Record) -> datetime:
    stamp: datetime = rec["SystemModstamp"]
    return stamp


def _top_level(where: Cond | None) -> list[Cond]:
    if where is None:
        return []
    return where.children if where.op == "and" else [where]


def _is_direct(cond: Cond, name: str) -> bool:
    return cond.path is not None and not cond.path.hops and cond.path.target.name == name


def _id_filter(conds: list[Cond]) -> set[str] | None:
    for cond in conds:
        if _is_direct(cond, "Id") and (cond.op == "in" or (cond.op == "cmp"
                                                           and cond.operator == "=")):
            return {lit.value for lit in cond.literals if lit.value is not None}
    return None


Bounds = tuple[datetime | None, datetime | None]     # inclusive SystemModstamp range


def _modstamp_bounds(cond: Cond) -> Bounds | None:
    """The SystemModstamp range a condition implies (a superset), or None if unbounded."""
    if cond.op == "cmp":
        if not (_is_direct(cond, "SystemModstamp") and cond.literals[0].kind == "datetime"):
            return None
        value = cond.literals[0].value
        return {">": (value, None), ">=": (value, None), "<": (None, value),
                "<=": (None, value), "=": (value, value)}.get(cond.operator)
    children = [_modstamp_bounds(c) for c in cond.children] if cond.op in ("and", "or") \
        else []
    if cond.op == "and":
        known = [b for b in children if b is not None]
        if not known:
            return None
        lows = [b[0] for b in known if b[0] is not None]
        highs = [b[1] for b in known if b[1] is not None]
        return (max(lows) if lows else None, min(highs) if highs else None)
    if cond.op == "or":
        if not children or any(b is None for b in children):
            return None
        spans = [b for b in children if b is not None]
        low = None if any(b[0] is None for b in spans) else min(b[0] for b in spans
                                                                 if b[0] is not None)
        high = None if any(b[1] is None for b in spans) else max(b[1] for b in spans
                                                                  if b[1] is not None)
        return None if low is None and high is None else (low, high)
    return None


def _exact_modstamp_range(where: Cond | None) -> bool:
    """Whether the condition is only SystemModstamp comparisons joined by AND, so the
    index slice is the exact answer and no predicate has to run per row."""
    conds = _top_level(where)
    return bool(conds) and all(
        c.op == "cmp" and _is_direct(c, "SystemModstamp") and c.literals[0].kind == "datetime"
        and c.operator in ("<", "<=", ">", ">=", "=") for c in conds)


def _is_modstamp_order(query: Query) -> bool:
    names = [(o.path.text, o.descending) for o in query.order]
    return bool(names) and names[0] == ("SystemModstamp", False) and (
        len(names) == 1 or (len(names) == 2 and names[1] == ("Id", False)))


FieldTree = dict[str, Any]     # name -> FieldDef (leaf) or (reference FieldDef, subtree)


def _field_tree(paths: list[FieldPath]) -> FieldTree:
    tree: FieldTree = {}
    for path in paths:
        node = tree
        for hop in path.hops:
            rel = hop.relationship or hop.name
            if rel not in node:
                node[rel] = (hop, {})
            node = node[rel][1]
        node[path.target.name] = path.target
    return tree


Serializer = Callable[..., dict[str, Any]]


def _build_serializer(tree: FieldTree, obj_name: str, version: str,
                      lookup: Callable[[str | None], Record | None]) -> Serializer:
    """Fields come out in SELECT order, as Salesforce returns them.

    One itemgetter call and one zip per row (stored records hold every field); a parent's
    slot first receives the reference id, then the nested parent object.
    """
    url_prefix = f"/services/data/v{version}/sobjects/"
    keys: list[str] = []
    sources: list[str] = []
    converted: list[tuple[str, FieldDef]] = []
    parents: list[tuple[str, str | None, Serializer]] = []
    for name, node in tree.items():
        keys.append(name)
        if isinstance(node, FieldDef):
            sources.append(name)
            if node.type in ("datetime", "date", "double", "currency", "percent"):
                converted.append((name, node))
        else:
            ref, sub = node
            sources.append(ref.name)
            poly = "Name" if len(ref.reference_to) > 1 else None
            parents.append((name, poly, _build_serializer(sub, "", version, lookup)))
    fetch = itemgetter(*sources)
    single = len(sources) == 1

    def serialize(rec: Record, type_name: str | None = None) -> dict[str, Any]:
        rid = rec["Id"]
        real_type = PREFIX_TO_OBJECT.get(rid[:3], obj_name)
        out: dict[str, Any] = {"attributes": {"type": type_name or real_type,
                                              "url": url_prefix + real_type + "/" + rid}}
        values = fetch(rec)
        out.update(zip(keys, (values,) if single else values, strict=True))
        for name, f in converted:
            value = out[name]
            if value is not None:
                out[name] = wire(f, value)
        for name, poly, child in parents:
            parent = lookup(out[name])
            out[name] = None if parent is None else child(parent, poly)
        return out

    return serialize
