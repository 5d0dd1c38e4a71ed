"""What `syncagent setup` would change: the doctor's rows and facts -> actions (pure).

Setup creates what is missing and never deletes or retypes anything:
- Salesforce custom fields (types from the requirements), missing values of the agent's
  picklists and of the Lead Status standard value set, and one permission set granting read
  (and edit, where the agent writes) on every custom field the agent uses, assigned to the
  integration user;
- a HubSpot property group with the agent's properties and their options, and one MANUAL
  list per nurture track.
A field or property that exists with another type, a text field too short, a missing value
of another standard picklist or a missing scope is not changed: it is listed with its fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncagent.preflight.checks import OK, SF_COMPATIBLE, Row
from syncagent.preflight.requirements import HS_GROUP, Requirement

PERMISSION_SET = "Syncagent_Integration"
PERMISSION_SET_LABEL = "syncagent integration"
HS_GROUP_LABEL = "syncagent"
# The key of ``plan``'s ``existing`` that holds the LeadStatus StandardValueSet (None: unknown).
LEAD_STATUS_SET = "StandardValueSet.LeadStatus"

# Metadata API type of an existing field -> the describe type it shows as.
MD_TO_DESCRIBE = {"Text": "string", "TextArea": "textarea", "LongTextArea": "textarea",
                  "Number": "double", "Currency": "currency", "Percent": "percent",
                  "Checkbox": "boolean", "Date": "date", "DateTime": "datetime",
                  "Email": "email", "Phone": "phone", "Url": "url", "Picklist": "picklist"}
HS_TYPES = {"string": ("string", "text"), "number": ("number", "number"),
            "enumeration": ("enumeration", "select"), "datetime": ("datetime", "date")}


@dataclass(frozen=True)
class Action:
    """One step of the plan. ``kind`` "conflict" and "manual" are reported, never applied."""

    system: str
    kind: str        # create_field add_values add_lead_status grant assign create_group
    #                  create_property add_options create_list conflict manual
    target: str
    detail: str
    payload: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def applies(self) -> bool:
        return self.kind not in ("conflict", "manual")

    def as_json(self) -> dict[str, Any]:
        return {"system": self.system, "action": self.kind, "target": self.target,
                "detail": self.detail, "applied_by_setup": self.applies}


def label_of(name: str) -> str:
    return name.removesuffix("__c").replace("_", " ")


def field_component(req: Requirement, values: list[str] | None = None,
                    label: str | None = None, restricted: bool = True) -> dict[str, Any]:
    """The ``CustomField`` metadata for a requirement (types as issue 12 lists them)."""
    md: dict[str, Any] = {"fullName": f"{req.object}.{req.name}",
                          "label": label or label_of(req.name)}
    kind = req.type
    if kind == "number":
        md.update(type="Number", precision=18, scale=0)
    elif kind == "longtext":
        md.update(type="LongTextArea", length=req.length or 32768, visibleLines=3)
    elif kind == "datetime":
        md.update(type="DateTime")
    elif kind == "checkbox":
        md.update(type="Checkbox", defaultValue=False)
    elif kind == "picklist":
        names = values if values is not None else [v.value for v in req.values]
        md.update(type="Picklist", valueSet={
            "restricted": restricted, "valueSetDefinition": {
                "sorted": False, "value": [{"fullName": v, "default": False, "label": v}
                                           for v in names]}})
    else:
        md.update(type="Text", length=req.length or 255)
    if req.kind == "external_id":
        md.update(externalId=True, unique=True)
    return md


def plan(requirements: list[Requirement], rows: list[Row], facts: dict[str, Any],
         existing: dict[str, dict[str, Any] | None]) -> list[Action]:
    """The actions for every unmet requirement. ``existing`` is the ``CustomField``
    metadata of each custom field describe does not show (None: it does not exist), and
    under LEAD_STATUS_SET the Lead Status value set when a status is missing."""
    by_key = {r.key: r for r in rows}
    sf = facts.get("salesforce") or {}
    hs = facts.get("hubspot") or {}
    actions: list[Action] = []
    grants: list[Requirement] = []
    for req in requirements:
        row = by_key[req.key]
        if req.system == "salesforce" and req.kind in ("field", "external_id"):
            actions.extend(_salesforce_field(req, row, sf, existing, grants))
        elif req.kind == "lead_status" and row.status != OK:
            actions.append(_lead_status(row, existing.get(LEAD_STATUS_SET)))
        elif req.kind == "property":
            actions.extend(_property(req, row, hs))
        elif req.kind == "list":
            actions.extend(_list(req, row, hs))
        elif req.kind == "scope" and row.status != OK:
            actions.append(Action("hubspot", "manual", req.name, row.fix))
    actions.extend(_permission_set(grants, requirements))
    return _group_first(actions, hs)


def _salesforce_field(req: Requirement, row: Row, sf: dict[str, Any],
                      existing: dict[str, dict[str, Any] | None],
                      grants: list[Requirement]) -> list[Action]:
    if row.status == OK or sf.get("error"):
        return []
    if not req.custom:
        return [Action("salesforce", "conflict", f"{req.object}.{req.name}",
                       f"{row.detail}: {row.fix}")]
    full_name = f"{req.object}.{req.name}"
    entry = _described(sf, req)
    if entry is None:
        md = existing.get(full_name)
        grants.append(req)
        if md is None:
            return [Action("salesforce", "create_field", full_name,
                           f"create {_md_text(field_component(req))}",
                           {"component": field_component(req)})]
        return _existing_hidden(req, md)
    kind = str(entry.get("type"))
    if kind not in SF_COMPATIBLE.get(req.type, {kind}) or "external id" in row.detail \
            or "characters" in row.detail:
        return [Action("salesforce", "conflict", full_name, f"{row.detail}: {row.fix}")]
    if "cannot edit" in row.detail:
        grants.append(req)
        return []
    if row.missing_values:
        return [_add_values(req, [str(p.get("value")) for p in
                                  entry.get("picklistValues") or []],
                            [v.value for v in row.missing_values],
                            str(entry.get("label") or label_of(req.name)),
                            bool(entry.get("restrictedPicklist")))]
    return []


def _lead_status(row: Row, value_set: dict[str, Any] | None) -> Action:
    """Missing Lead Status values join the LeadStatus standard value set. An update replaces
    the whole set, so every value it holds is sent again with its flags (converted, default);
    the new ones are neither."""
    if value_set is None:
        return Action("salesforce", "manual", "Lead.Status", row.fix)
    have = [{k: v for k, v in value.items() if v not in (None, [], {})}
            for value in _as_list(value_set.get("standardValue")) if isinstance(value, dict)]
    known = {str(v.get("fullName")).casefold() for v in have}
    added = [v.value for v in row.missing_values if v.value.casefold() not in known]
    if not added:   # in the set but not shown by describe (inactive): an admin's call
        return Action("salesforce", "manual", "Lead.Status", row.fix)
    component = {"fullName": "LeadStatus", "sorted": bool(value_set.get("sorted")),
                 "standardValue": [*have, *({"fullName": v, "label": v, "default": False,
                                             "converted": False} for v in added)]}
    return Action("salesforce", "add_lead_status", "LeadStatus",
                  "add Lead Status value(s) " + ", ".join(repr(v) for v in added),
                  {"component": component})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _described(sf: dict[str, Any], req: Requirement) -> dict[str, Any] | None:
    fields = (sf.get("objects") or {}).get(req.object) or {}
    return fields.get(req.name) or next(
        (f for n, f in fields.items() if n.lower() == req.name.lower()), None)


def _existing_hidden(req: Requirement, md: dict[str, Any]) -> list[Action]:
    """A field the Metadata API knows but describe hides: grant it; add missing values."""
    full_name = f"{req.object}.{req.name}"
    kind = MD_TO_DESCRIBE.get(str(md.get("type")), "")
    if kind not in SF_COMPATIBLE.get(req.type, set()):
        return [Action("salesforce", "conflict", full_name,
                       f"exists as {md.get('type')}, the agent needs {req.type}: setup never "
                       "changes a field's type; change it in Setup or delete it, then run "
                       "setup again")]
    if kind != "picklist" or not req.values:
        return []
    have = _md_values(md)
    missing = [v.value for v in req.values if v.value.casefold() not in
               {h.casefold() for h in have}]
    value_set = md.get("valueSet") or {}
    return [_add_values(req, have, missing, str(md.get("label") or label_of(req.name)),
                        bool(value_set.get("restricted")))] if missing else []


def _md_values(md: dict[str, Any]) -> list[str]:
    definition = (md.get("valueSet") or {}).get("valueSetDefinition") or {}
    values = definition.get("value") or []
    values = values if isinstance(values, list) else [values]
    return [str(v.get("fullName")) for v in values if isinstance(v, dict) and v.get("fullName")]


def _add_values(req: Requirement, have: list[str], missing: list[str], label: str,
                restricted: bool) -> Action:
    component = field_component(req, [*have, *missing], label=label, restricted=restricted)
    return Action("salesforce", "add_values", f"{req.object}.{req.name}",
                  "add picklist value(s) " + ", ".join(repr(v) for v in missing),
                  {"component": component})


def _md_text(md: dict[str, Any]) -> str:
    kind = str(md["type"])
    extra = f"({md['length']})" if kind in ("Text", "LongTextArea") else ""
    if kind == "Picklist":
        values = md["valueSet"]["valueSetDefinition"]["value"]
        extra = f" (restricted: {', '.join(v['fullName'] for v in values)})"
    flags = ", external id, unique" if md.get("externalId") else ""
    return f"{kind}{extra}{flags}"


def _permission_set(grants: list[Requirement], requirements: list[Requirement]
                    ) -> list[Action]:
    """One permission set over every custom field the agent uses (so re-applying keeps all of
    them granted), assigned to the integration user; only when a field lacks access."""
    if not grants:
        return []
    fields = [r for r in requirements if r.system == "salesforce" and r.custom and r.object]
    permissions = [{"field": f"{r.object}.{r.name}", "readable": True,
                    "editable": r.write} for r in fields]
    component = {"fullName": PERMISSION_SET, "label": PERMISSION_SET_LABEL,
                 "fieldPermissions": permissions}
    names = ", ".join(f"{r.object}.{r.name}" for r in grants)
    return [Action("salesforce", "grant", PERMISSION_SET,
                   f"permission set granting read (edit where the agent writes) on "
                   f"{len(permissions)} fields, for {names}", {"component": component}),
            Action("salesforce", "assign", PERMISSION_SET,
                   "assign it to the integration user")]


def _property(req: Requirement, row: Row, hs: dict[str, Any]) -> list[Action]:
    if row.status == OK or hs.get("error") or hs.get("properties") is None:
        return []
    prop = (hs.get("properties") or {}).get(req.name)
    if prop is None and req.custom:
        kind, field_type = HS_TYPES.get(req.type, ("string", "text"))
        if req.name == "score_reasons":
            field_type = "textarea"
        body: dict[str, Any] = {"name": req.name, "label": label_of(req.name).title(),
                                "type": kind, "fieldType": field_type, "groupName": HS_GROUP}
        if kind == "enumeration":
            body["options"] = [{"label": v.value, "value": v.value, "displayOrder": i,
                                "hidden": False} for i, v in enumerate(req.values)]
        return [Action("hubspot", "create_property", req.name,
                       f"create {kind} ({field_type}) in group '{HS_GROUP}'"
                       + (f" with {len(req.values)} options" if req.values else ""),
                       {"body": body})]
    if prop is not None and req.custom and row.missing_values and "options" in row.detail:
        old = [{"label": (prop.get("option_labels") or {}).get(o) or o, "value": o,
                "displayOrder": i, "hidden": False} for i, o in enumerate(prop["options"])]
        new = [{"label": v.value, "value": v.value, "displayOrder": len(old) + i,
                "hidden": False} for i, v in enumerate(row.missing_values)]
        return [Action("hubspot", "add_options", req.name, "add option(s) " + ", ".join(
            repr(v.value) for v in row.missing_values), {"options": old + new})]
    return [Action("hubspot", "conflict", req.name, f"{row.detail}: {row.fix}")]


def _list(req: Requirement, row: Row, hs: dict[str, Any]) -> list[Action]:
    if row.status == OK or hs.get("error") or hs.get("lists") is None:
        return []
    if (hs.get("lists") or {}).get(req.name):
        return [Action("hubspot", "conflict", req.name, f"{row.detail}: {row.fix}")]
    return [Action("hubspot", "create_list", req.name, "create a MANUAL contact list")]


def _group_first(actions: list[Action], hs: dict[str, Any]) -> list[Action]:
    """A property names its group, so the group is created before the first property."""
    creates = [a for a in actions if a.kind == "create_property"]
    groups = hs.get("groups")
    if not creates or groups is None or HS_GROUP in groups:
        return actions
    at = actions.index(creates[0])
    group = Action("hubspot", "create_group", HS_GROUP, f"property group '{HS_GROUP}'",
                   {"name": HS_GROUP, "label": HS_GROUP_LABEL})
    return [*actions[:at], group, *actions[at:]]
