"""The emulated Salesforce org: what a write means, over the rows the store keeps.

Callers hold ``SandboxContext.lock`` around every method (the router does, seeding and the
simulation do). Records are plain dicts keyed by API field name; datetimes are aware UTC
``datetime`` objects (system stamps at whole seconds, as Salesforce stores them), dates are
``date`` objects, ids are 18-char.

The org is a facade over its parts: ``store`` (tables, recycle bin, indexes, journal),
``validation`` (the errors of an API write), ``planner`` (running a parsed query),
``serialize`` (records as REST JSON) and ``sessions`` (API usage, query cursors). What stays
here is Salesforce's write semantics: stamps, derived fields, owners, cascades, conversion.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeAlias

from syncagent.sandbox.common import (
    SalesforceCredentials,
    SandboxClock,
    SandboxConfig,
    SandboxContext,
)
from syncagent.sandbox.salesforce import ids, planner, serialize, validation
from syncagent.sandbox.salesforce.fls import FieldAccess, OrgSchema
from syncagent.sandbox.salesforce.schema import (
    KEY_PREFIXES,
    OBJECTS,
    PREFIX_TO_OBJECT,
    FieldDef,
    SObjectDef,
)
from syncagent.sandbox.salesforce.serialize import Serializer
from syncagent.sandbox.salesforce.sessions import ApiUsage, Cursor, CursorTable
from syncagent.sandbox.salesforce.soql import FieldPath, Query
from syncagent.sandbox.salesforce.store import Record, RecordStore
from syncagent.sandbox.salesforce.validation import BatchKeys, Prepared, WriteError
from syncagent.sandbox.salesforce.values import seed_value

#: an owner whose id has this prefix is a user (not a queue): the record's maker and editor
USER_PREFIX = KEY_PREFIXES["User"]


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
        self.store = RecordStore(self.created_at)
        self._id_factories = {name: ids.IdFactory(obj.key_prefix) for name, obj in
                              OBJECTS.items()}
        self.sessions: dict[str, int] = {sid: 0}
        self.usage = ApiUsage()
        self.cursors = CursorTable()
        self.integration_user_id = self.insert("User", [{
            "Username": credentials.username, "Email": credentials.username,
            "FirstName": "Integration", "LastName": "User", "Alias": "integ",
            "IsActive": True}])[0]
        for table in self.store.tables.values():   # the integration user created itself
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
        table = self.store.tables[obj.name]
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
            if isinstance(owner, str) and owner.startswith(USER_PREFIX):
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
            self.store.add(obj, rec)
            if rec.get("IsDeleted"):
                self.store.deleted_at[obj.name][rec["Id"]] = rec["SystemModstamp"]
            new_ids.append(rec["Id"])
        self.store.changed(obj.name)
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
        rec = self.store.tables["User"][integ]
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
        rec = self.store.tables[obj.name].get(ids.to18(record_id))
        if rec is None:
            raise KeyError(f"{obj.name} {record_id} does not exist")
        values = {name: seed_value(obj.fields[name], raw)
                  for name, raw in self._existing_fields(obj, fields).items()}
        owner = rec.get("OwnerId")
        editor = by or (owner if isinstance(owner, str) and owner.startswith(USER_PREFIX) else None)
        self._apply_update(obj, rec, values, system=system, editor=editor, stamp_at=stamp_at)

    def delete(self, sobject: str, record_id: str) -> None:
        """Soft-delete into the recycle bin (queryAll and /deleted still see it)."""
        obj = self._obj(sobject)
        rec = self.store.tables[obj.name].get(ids.to18(record_id))
        if rec is None or rec.get("IsDeleted"):
            raise KeyError(f"{obj.name} {record_id} does not exist or is already deleted")
        self._apply_delete(obj, rec)

    def convert_lead(self, lead_id: str, *, status: str | None = None,
                     account_id: str | None = None) -> str:
        """Convert a lead as a rep would: a Contact (and an Account unless given) is created,
        the lead's activities and campaign memberships move to the contact, and the lead
        becomes read-only (IsConverted). Returns the new Contact id."""
        lead = self.store.tables["Lead"].get(ids.to18(lead_id))
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
        for child_id in self.store.children_of(lead["Id"]):
            child_name = PREFIX_TO_OBJECT[child_id[:3]]
            moved = {"ContactId": contact_id, "LeadId": None} if child_name == \
                "CampaignMember" else {"WhoId": contact_id}
            self._apply_update(self.schema.objects[child_name],
                               self.store.tables[child_name][child_id], moved, system=True)
        self._apply_update(self.schema.objects["Lead"], lead, {
            "IsConverted": True, "Status": status, "ConvertedDate": _stamp(self.clock).date(),
            "ConvertedContactId": contact_id, "ConvertedAccountId": account_id})
        return contact_id

    def get(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        """A copy of the stored record (deleted ones too, with IsDeleted true), or None."""
        obj = self._obj(sobject)
        rec = self.store.tables[obj.name].get(ids.to18(record_id)) if ids.is_valid(
            record_id) else None
        return dict(rec) if rec is not None else None

    def records(self, sobject: str) -> Iterable[dict[str, Any]]:
        """Every stored record of the object (live dicts: read, do not mutate)."""
        return list(self.store.tables[self._obj(sobject).name].values())

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

    # ------------------------------------------------------------ store reads and journal

    def find_unique(self, obj: SObjectDef, fname: str, value: Any) -> str | None:
        return self.store.find_unique(obj, fname, value)

    def lookup(self, record_id: str | None) -> Record | None:
        """Any record by id (parents in SOQL relationship paths)."""
        return self.store.lookup(record_id)

    def table(self, sobject: str) -> dict[str, Record]:
        return self.store.tables[sobject]

    def savepoint(self) -> int:
        """Start (or nest into) before-image recording; returns the mark to roll back to."""
        return self.store.journal.savepoint()

    def release(self, mark: int) -> None:
        """Keep the writes made since the savepoint."""
        self.store.journal.release(mark)

    def rollback_to(self, mark: int) -> None:
        """Undo every write made since the savepoint, newest first, then release it."""
        self.store.rollback_to(mark)

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
        self.store.save_before(obj, rec["Id"])
        self.store.add(obj, rec)
        self.store.changed(obj.name)
        return str(rec["Id"])

    def _apply_update(self, obj: SObjectDef, rec: Record, values: dict[str, Any], *,
                      system: bool = False, editor: str | None = None,
                      stamp_at: datetime | None = None) -> None:
        self.store.save_before(obj, rec["Id"])
        self.store.index_remove(obj, rec)
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
        self.store.index_add(obj, rec)
        self.store.changed(obj.name)

    def _apply_delete(self, obj: SObjectDef, rec: Record) -> None:
        self.store.save_before(obj, rec["Id"])
        now = _stamp(self.clock)
        rec["IsDeleted"] = True
        rec["SystemModstamp"] = max(now, rec["SystemModstamp"])
        self.store.mark_deleted(obj, rec, now)
        if obj.name in ("Lead", "Contact"):
            # As in Salesforce: a person's activities and campaign memberships go with it.
            for child_id in self.store.children_of(rec["Id"]):
                child_obj = self.schema.objects[PREFIX_TO_OBJECT[child_id[:3]]]
                child = self.store.tables[child_obj.name].get(child_id)
                if child is not None and not child.get("IsDeleted"):
                    self._apply_delete(child_obj, child)

    def purge(self, sobject: str) -> None:
        """Empty the recycle bin of records deleted more than 15 days ago."""
        self.store.purge(sobject, _stamp(self.clock))

    def earliest_date_available(self, sobject: str) -> datetime:
        return self.store.earliest_date_available(sobject)

    def deleted_between(self, sobject: str, start: datetime, end: datetime,
                        ) -> list[tuple[str, datetime]]:
        return self.store.deleted_between(sobject, start, end)

    # ------------------------------------------------------------ API writes

    def prepare(self, obj: SObjectDef, body: dict[str, Any], *, record_id: str | None,
                reject: Callable[[], bool], batch_keys: BatchKeys | None = None,
                ) -> Prepared | list[WriteError]:
        """Validate one create (record_id None) or update; the errors Salesforce would give."""
        return validation.prepare(self.store, obj, body, record_id=record_id, reject=reject,
                                  batch_keys=batch_keys)

    def apply(self, p: Prepared) -> tuple[str, bool]:
        """Write a prepared record: (id, created)."""
        if p.record_id is None:
            record_id = self._apply_create(p)
            if p.obj.name == "PermissionSetAssignment" and \
                    p.values.get("AssigneeId") == self.integration_user_id:
                self.schema.assign(str(p.values["PermissionSetId"]))
            return record_id, True
        rec = self.store.tables[p.obj.name][ids.to18(p.record_id)]
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
        rec = self.store.tables[name].get(ids.to18(record_id))
        if rec is None:
            return WriteError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if rec.get("IsDeleted"):
            return WriteError("ENTITY_IS_DELETED", "entity is deleted")
        self._apply_delete(obj, rec)
        return None

    # ------------------------------------------------------------ schema changes

    def add_field(self, obj_name: str, f: FieldDef) -> bool:
        """Create (True) or change (False) a field; records get its default, as Salesforce
        gives existing rows the default of a new field."""
        before = self.schema.put_field(obj_name, f)
        if before is None:
            self.store.fill(obj_name, f.name, f.default)
        if f.unique:
            self.store.index_unique(obj_name, f.name)
        return before is None

    def remove_field(self, obj_name: str, field_name: str) -> bool:
        """Delete a field and its values (a sandbox control: an org without that field)."""
        f = self.schema.drop_field(obj_name, field_name)
        if f is None:
            return False
        self.store.drop_field(obj_name, f.name)
        self.cursors.clear()     # their serializers would read the field
        return True

    # ------------------------------------------------------------ queries

    def ordered(self, sobject: str) -> list[Record]:
        """Records sorted by (SystemModstamp, Id): the index behind modstamp range queries."""
        return self.store.ordered(sobject)

    def run_query(self, query: Query, *, include_deleted: bool) -> list[Record]:
        """Matching records, in the query's order, after OFFSET and LIMIT."""
        self.purge(query.obj.name)
        return planner.run_query(self.store, query, self.clock.now(),
                                 include_deleted=include_deleted)

    # ------------------------------------------------------------ sessions & cursors

    def new_session(self) -> str:
        sid = f"{self.org_id}!AQ" + secrets.token_urlsafe(72)[:96]
        self.sessions[sid] = 0
        return sid

    def open_cursor(self, rows: list[Record], query: Query, batch: int) -> str:
        return self.cursors.open(rows, query, batch)

    def cursor(self, locator: str) -> Cursor | None:
        return self.cursors.get(locator)

    def serializer(self, query_fields: list[FieldPath], obj_name: str, version: str,
                   ) -> Serializer:
        """A function turning a stored record into the REST JSON for the selected fields."""
        return serialize.serializer(query_fields, obj_name, version, self.store.lookup)

    def full_record(self, obj: SObjectDef, rec: Record, version: str,
                    only: list[str] | None = None) -> dict[str, Any]:
        """GET /sobjects/X/{id}: every field (or ?fields=...), wire-formatted."""
        return serialize.full_record(obj, rec, version, only)


# The sandbox context as the Salesforce emulator sees it: the org typed, the portal not touched.
SalesforceContext: TypeAlias = SandboxContext[SalesforceOrg, Any]
