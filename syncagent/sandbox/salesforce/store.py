"""The org's rows and the indexes over them.

One table per sObject (id -> record dict), the recycle bin, the secondary indexes Salesforce
keeps (unique fields, campaign memberships, a person's activities and memberships) and the
(SystemModstamp, Id) order that range queries slice. The store knows nothing of stamps,
derived fields or validation: ``SalesforceOrg`` decides what a write means, the store keeps
the rows and their indexes consistent and journals before-images for rollback.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from syncagent.sandbox.salesforce import ids
from syncagent.sandbox.salesforce.journal import Journal
from syncagent.sandbox.salesforce.schema import OBJECTS, PREFIX_TO_OBJECT, SObjectDef

Record = dict[str, Any]
DELETED_RETENTION = timedelta(days=15)       # recycle bin: getDeleted/queryAll horizon

# The children that follow a person: converted with a lead, deleted with a lead or contact.
_CASCADE_FIELDS = {"Task": ("WhoId",), "Event": ("WhoId",),
                   "CampaignMember": ("LeadId", "ContactId")}


def member_key(rec: Record) -> tuple[str | None, str | None]:
    """(campaign id, person id) of a CampaignMember row or of the values written to one."""
    person = rec.get("LeadId") or rec.get("ContactId")
    campaign = rec.get("CampaignId")
    return (ids.to18(campaign) if campaign else None), (ids.to18(person) if person else None)


class RecordStore:
    """Tables, recycle bin, indexes and journal of one org. Hold the sandbox lock."""

    def __init__(self, created_at: datetime) -> None:
        self.tables: dict[str, dict[str, Record]] = {name: {} for name in OBJECTS}
        self.deleted_at: dict[str, dict[str, datetime]] = {name: {} for name in OBJECTS}
        # Time of the last physically deleted record (earliestDateAvailable); nothing is
        # purged yet, so the horizon is the 15-day recycle-bin window itself.
        self._purged_until: dict[str, datetime] = {
            name: created_at - DELETED_RETENTION for name in OBJECTS}
        self.unique: dict[tuple[str, str], dict[str, str]] = {
            (name, f.name): {} for name, obj in OBJECTS.items() for f in obj.fields.values()
            if f.unique}
        self._members: dict[tuple[str | None, str | None], str] = {}   # (campaign, person)
        self._children: dict[str, list[str]] = {}   # person id -> activity/member ids
        self._order: dict[str, list[Record]] = {}
        self._order_dirty: set[str] = set(OBJECTS)
        self.journal = Journal()

    # ------------------------------------------------------------ reads

    def lookup(self, record_id: str | None) -> Record | None:
        """Any record by id (parents in SOQL relationship paths)."""
        if not record_id:
            return None
        name = PREFIX_TO_OBJECT.get(record_id[:3])
        return self.tables[name].get(record_id) if name else None

    def find_unique(self, obj: SObjectDef, fname: str, value: Any) -> str | None:
        index = self.unique.get((obj.name, fname))
        return index.get(str(value).lower()) if index is not None else None

    def has_member(self, values: Record) -> bool:
        """Whether the person is already a member of the campaign."""
        return member_key(values) in self._members

    def children_of(self, person_id: str) -> list[str]:
        """Ids of the person's live activities and campaign memberships (a copy)."""
        return list(self._children.get(person_id, ()))

    def ordered(self, sobject: str) -> list[Record]:
        """Records sorted by (SystemModstamp, Id): the index behind modstamp range queries."""
        table = self.tables[sobject]
        cached = self._order.get(sobject)
        if cached is None or len(cached) != len(table):
            cached = list(table.values())
            self._order_dirty.add(sobject)
        if sobject in self._order_dirty:
            cached.sort(key=lambda r: (r["SystemModstamp"], r["Id"]))
            self._order[sobject] = cached
            self._order_dirty.discard(sobject)
        return cached

    # ------------------------------------------------------------ writes

    def save_before(self, obj: SObjectDef, record_id: str) -> None:
        """Journal the row as it is now, if a savepoint is open (call before changing it)."""
        if self.journal.entries is not None:
            rec = self.tables[obj.name].get(record_id)
            self.journal.entries.append((obj.name, record_id, dict(rec) if rec else None,
                                         self.deleted_at[obj.name].get(record_id)))

    def add(self, obj: SObjectDef, rec: Record) -> None:
        """Store a new row and index it (the caller marks the table changed)."""
        self.tables[obj.name][rec["Id"]] = rec
        self.index_add(obj, rec)

    def changed(self, sobject: str) -> None:
        """Rows of the object were added or restamped: re-sort before the next range read."""
        self._order_dirty.add(sobject)

    def mark_deleted(self, obj: SObjectDef, rec: Record, when: datetime) -> None:
        """The row went to the recycle bin at ``when`` (the caller has set IsDeleted)."""
        self.deleted_at[obj.name][rec["Id"]] = when
        self.index_remove(obj, rec)
        self._order_dirty.add(obj.name)

    def index_add(self, obj: SObjectDef, rec: Record) -> None:
        for (name, fname), index in self.unique.items():
            if name == obj.name and rec.get(fname) is not None:
                index[str(rec[fname]).lower()] = rec["Id"]
        if obj.name == "CampaignMember" and not rec.get("IsDeleted"):
            self._members[member_key(rec)] = rec["Id"]
        if obj.name in _CASCADE_FIELDS and not rec.get("IsDeleted"):
            for fname in _CASCADE_FIELDS[obj.name]:
                parent = rec.get(fname)
                if parent:
                    self._children.setdefault(parent, []).append(rec["Id"])

    def index_remove(self, obj: SObjectDef, rec: Record) -> None:
        for (name, fname), index in self.unique.items():
            if name == obj.name and rec.get(fname) is not None:
                key = str(rec[fname]).lower()
                if index.get(key) == rec["Id"]:
                    del index[key]
        if obj.name == "CampaignMember" and self._members.get(member_key(rec)) == rec["Id"]:
            del self._members[member_key(rec)]
        if obj.name in _CASCADE_FIELDS:
            for fname in _CASCADE_FIELDS[obj.name]:
                children = self._children.get(rec.get(fname) or "")
                if children and rec["Id"] in children:
                    children.remove(rec["Id"])

    # ------------------------------------------------------------ recycle bin

    def purge(self, sobject: str, now: datetime) -> None:
        """Empty the recycle bin of records deleted more than 15 days before ``now``."""
        horizon = now - DELETED_RETENTION
        deleted = self.deleted_at[sobject]
        old = [rid for rid, when in deleted.items() if when < horizon]
        if not old:
            return
        table = self.tables[sobject]
        for rid in old:
            self._purged_until[sobject] = max(self._purged_until[sobject], deleted.pop(rid))
            table.pop(rid, None)
        self._order.pop(sobject, None)
        self._order_dirty.add(sobject)

    def earliest_date_available(self, sobject: str) -> datetime:
        return self._purged_until[sobject]

    def deleted_between(self, sobject: str, start: datetime, end: datetime,
                        ) -> list[tuple[str, datetime]]:
        return sorted(((rid, when) for rid, when in self.deleted_at[sobject].items()
                       if start <= when <= end), key=lambda item: (item[1], item[0]))

    # ------------------------------------------------------------ journal

    def rollback_to(self, mark: int) -> None:
        """Undo every write made since the savepoint, newest first, then release it."""
        for name, record_id, before, deleted_at in reversed(self.journal.take_since(mark)):
            self._restore(OBJECTS[name], record_id, before, deleted_at)
        self.journal.release(mark)

    def _restore(self, obj: SObjectDef, record_id: str, before: Record | None,
                 deleted_at: datetime | None) -> None:
        table = self.tables[obj.name]
        current = table.get(record_id)
        if current is not None:
            self.index_remove(obj, current)
        if before is None:
            table.pop(record_id, None)
        else:
            if current is not None:
                current.clear()
                current.update(before)
            else:
                table[record_id] = before
            self.index_add(obj, table[record_id])
        if deleted_at is None:
            self.deleted_at[obj.name].pop(record_id, None)
        else:
            self.deleted_at[obj.name][record_id] = deleted_at
        self._order_dirty.add(obj.name)
        self._order.pop(obj.name, None)

    # ------------------------------------------------------------ schema changes

    def fill(self, obj_name: str, name: str, default: Any) -> None:
        """A new field: existing rows get its default, as Salesforce gives them."""
        for rec in self.tables[obj_name].values():
            rec.setdefault(name, default)

    def index_unique(self, obj_name: str, name: str) -> None:
        """Index a field that became unique (no-op if it is indexed already)."""
        if (obj_name, name) in self.unique:
            return
        index = self.unique[(obj_name, name)] = {}
        for rec in self.tables[obj_name].values():
            if rec.get(name) is not None:
                index[str(rec[name]).lower()] = rec["Id"]

    def drop_field(self, obj_name: str, name: str) -> None:
        """The field's values and its unique index go."""
        for rec in self.tables[obj_name].values():
            rec.pop(name, None)
        self.unique.pop((obj_name, name), None)
