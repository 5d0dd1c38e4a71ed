"""The org's own schema and the integration user's field-level security (FLS).

``schema.OBJECTS`` is the catalogue of everything the emulator knows how to model. Each org
holds its own copy (:class:`OrgSchema`): a ``fresh`` org starts without any custom field and
with the standard Lead Status values only; the Metadata API adds fields and permission sets to
it, and the sandbox controls remove fields or revoke access, for tests.

What the API shows is the integration user's *view* of an object (:meth:`OrgSchema.view`):
custom fields it has no read access to are absent, as if they did not exist, and fields it can
read but not edit are neither createable nor updateable. Real orgs behave so:

- A field the user cannot read (or that does not exist) in a SELECT fails the whole query with
  ``INVALID_FIELD`` ("No such column ..."): integrators meet it as a field-level visibility
  issue (e.g. https://docs.withampersand.com/troubleshooting-guides/salesforce).
- Describe lists only the fields the running user can see ("if you describe account fields
  ... and you don't have access to all fields, not all fields are returned": Apex Developer
  Guide, "Understanding Describe Information Permissions",
  https://developer.salesforce.com/docs/atlas.en-us.apexcode.meta/api/apex_dynamic_permissions.htm),
  and ``createable``/``updateable`` are the user's create/update access ("API Field
  Properties", https://developer.salesforce.com/docs/platform/object-reference/guide/access-for-fields.html).
- Custom fields deployed through the Metadata API are visible to no one until a profile or a
  permission set grants access (Metadata API Developer Guide, "CustomField" and
  "PermissionSet": fieldPermissions).

Standard fields are always readable by the integration user here (its profile grants them);
FLS is modelled on custom fields, where real integrations meet it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from syncagent.sandbox.salesforce.schema import (
    OBJECTS,
    STANDARD_LEAD_STATUSES,
    FieldDef,
    SObjectDef,
)


@dataclass(frozen=True)
class FieldAccess:
    """One fieldPermissions entry of a permission set."""

    readable: bool
    editable: bool


def _bare(obj: SObjectDef) -> SObjectDef:
    """The object as a new org has it: standard fields only, standard Lead Status values."""
    fields = {n: f for n, f in obj.fields.items() if not f.custom}
    if obj.name == "Lead":
        fields["Status"] = replace(fields["Status"], picklist=STANDARD_LEAD_STATUSES)
    return SObjectDef(obj.name, fields)


class OrgSchema:
    """Objects and fields of one org, plus the permission sets that grant FLS on custom fields.

    Not thread-safe by itself: callers hold the sandbox lock.
    """

    def __init__(self, *, fresh: bool) -> None:
        self.objects: dict[str, SObjectDef] = {
            name: _bare(obj) if fresh else obj for name, obj in OBJECTS.items()}
        self._lower = {name.lower(): name for name in self.objects}
        # permission set id -> "Object.Field__c" (lower case) -> access
        self.grants: dict[str, dict[str, FieldAccess]] = {}
        self.assigned: set[str] = set()    # permission set ids the integration user holds
        self._views: dict[str, SObjectDef] = {}

    # ------------------------------------------------------------------ lookups

    def full(self, name: str) -> SObjectDef | None:
        """The object with every field it has (case-insensitive name), or None."""
        real = self._lower.get(name.lower())
        return self.objects[real] if real else None

    def view(self, name: str) -> SObjectDef | None:
        """The object as the integration user sees it through the API, or None."""
        real = self._lower.get(name.lower())
        if real is None:
            return None
        cached = self._views.get(real)
        if cached is None:
            cached = self._views[real] = self._build_view(self.objects[real])
        return cached

    def _build_view(self, obj: SObjectDef) -> SObjectDef:
        fields: dict[str, FieldDef] = {}
        for name, f in obj.fields.items():
            if not f.custom:
                fields[name] = f
                continue
            access = self.access(obj.name, name)
            if not access.readable:
                continue
            fields[name] = f if access.editable else replace(f, createable=False,
                                                             updateable=False)
        return SObjectDef(obj.name, fields)

    def access(self, obj_name: str, field_name: str) -> FieldAccess:
        """The integration user's access to a custom field: the union of its permission sets."""
        key = f"{obj_name}.{field_name}".lower()
        readable = editable = False
        for permset_id in self.assigned:
            grant = self.grants.get(permset_id, {}).get(key)
            if grant is not None:
                readable = readable or grant.readable or grant.editable
                editable = editable or grant.editable
        return FieldAccess(readable, editable)

    # ------------------------------------------------------------------ changes

    def _changed(self) -> None:
        self._views.clear()

    def put_field(self, obj_name: str, f: FieldDef) -> FieldDef | None:
        """Add or replace a field; returns the field it replaced (None: it is new)."""
        obj = self.objects[obj_name]
        before = obj.field(f.name)
        fields = {n: old for n, old in obj.fields.items() if before is None or n != before.name}
        fields[f.name] = f
        self.objects[obj_name] = SObjectDef(obj_name, fields)
        self._changed()
        return before

    def drop_field(self, obj_name: str, field_name: str) -> FieldDef | None:
        """Delete a field from the org (its values go with it); returns it, or None."""
        obj = self.objects[obj_name]
        f = obj.field(field_name)
        if f is None:
            return None
        self.objects[obj_name] = SObjectDef(
            obj_name, {n: old for n, old in obj.fields.items() if n != f.name})
        for grants in self.grants.values():
            grants.pop(f"{obj_name}.{f.name}".lower(), None)
        self._changed()
        return f

    def grant(self, permset_id: str, field_full_name: str, access: FieldAccess) -> None:
        self.grants.setdefault(permset_id, {})[field_full_name.lower()] = access
        self._changed()

    def revoke(self, obj_name: str, field_name: str) -> None:
        """Take read and edit access to a field away in every permission set."""
        key = f"{obj_name}.{field_name}".lower()
        for grants in self.grants.values():
            if key in grants:
                grants[key] = FieldAccess(False, False)
        self._changed()

    def set_grants(self, permset_id: str, grants: dict[str, FieldAccess] | None) -> None:
        """Put a permission set's fieldPermissions back as they were (None: drop them)."""
        if grants is None:
            self.grants.pop(permset_id, None)
            self.assigned.discard(permset_id)
        else:
            self.grants[permset_id] = dict(grants)
        self._changed()

    def assign(self, permset_id: str) -> None:
        self.assigned.add(permset_id)
        self._changed()
