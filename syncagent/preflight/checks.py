"""Requirements against the live schema facts: one row per requirement (pure, no I/O).

Facts are plain JSON-able data (see ``live.py``): per Salesforce object, the fields the
integration user can see (describe shows no others) with type, length, picklist values and
access; per HubSpot property its type and options; lists by name; the scopes the token lacks;
whether the events API answered. A row is ✔ (met), ✘ (blocks a sync) or ! (switches a feature
off), and every ✘ or ! row says how to fix it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from syncagent.preflight.lines import Where
from syncagent.preflight.requirements import Requirement, Value

OK, BLOCKER, WARNING = "ok", "blocker", "warning"
SYMBOL = {OK: "✔", BLOCKER: "✘", WARNING: "!"}
SETUP = "run `syncagent setup --apply`"

# Wanted type -> Salesforce describe types that serve it.
_SF_TEXT = {"string", "textarea", "picklist", "email", "phone", "url", "combobox"}
SF_COMPATIBLE: dict[str, set[str]] = {
    "text": {"string", "textarea"}, "longtext": {"textarea"},
    "number": {"double", "int", "currency", "percent"}, "picklist": {"picklist", "string"},
    "datetime": {"datetime"}, "checkbox": {"boolean"},
    "mapped:string": {*_SF_TEXT, "reference", "id"}, "mapped:email": {"email", "string"},
    "mapped:integer": {"int", "double", "currency", "percent"},
    "mapped:number": {"int", "double", "currency", "percent"},
    "mapped:date": {"date", "datetime"}, "mapped:country": {"string", "picklist", "combobox"},
    "mapped:phone": {"phone", "string"}, "mapped:url": {"url", "string"},
    "mapped:picklist": {"picklist", "string", "combobox", "multipicklist"},
    "mapped:boolean": {"boolean"},
    "mapped:ranges": {"picklist", "string", "combobox"},   # a number written as an option
}
HS_COMPATIBLE: dict[str, set[str]] = {
    "string": {"string"}, "number": {"number"}, "enumeration": {"enumeration"},
    "datetime": {"datetime", "date"},
    "mapped:string": {"string", "enumeration", "phone_number"},
    "mapped:email": {"string"}, "mapped:integer": {"number", "enumeration", "string"},
    "mapped:number": {"number", "string"}, "mapped:date": {"date", "datetime"},
    "mapped:country": {"string", "enumeration"}, "mapped:phone": {"string", "phone_number"},
    "mapped:url": {"string"}, "mapped:picklist": {"enumeration", "string"},
    "mapped:boolean": {"bool", "enumeration"},
    "mapped:ranges": {"enumeration", "string"},
}


@dataclass(frozen=True)
class Row:
    """One line of the doctor's table."""

    key: str
    system: str
    status: str              # ok | blocker | warning
    requirement: str
    detail: str = ""
    fix: str = ""
    where: Where | None = None
    missing_values: tuple[Value, ...] = ()

    @property
    def symbol(self) -> str:
        return SYMBOL[self.status]

    @property
    def subject(self) -> str:
        """The requirement without its parenthesised detail, e.g. ``Lead.Segment__c``."""
        return self.requirement.split(" (")[0]

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "system": self.system, "status": self.status,
                "symbol": self.symbol, "requirement": self.requirement, "detail": self.detail,
                "fix": self.fix, "file": self.where.file if self.where else None,
                "line": self.where.line if self.where else None,
                "missing_values": [v.value for v in self.missing_values]}


def evaluate(requirements: list[Requirement], facts: dict[str, Any]) -> list[Row]:
    """One row per requirement, in the requirements' order."""
    # HubSpot enumerations written from Salesforce picklists are checked against both
    hubspot = {**(facts.get("hubspot") or {}), "_salesforce": facts.get("salesforce") or {}}
    return [_row(r, hubspot if r.system == "hubspot" else facts.get(r.system) or {})
            for r in requirements]


def blockers(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.status == BLOCKER]


def _row(req: Requirement, facts: dict[str, Any]) -> Row:
    error = facts.get("error")
    if req.kind == "login":
        if error:
            return _fail(req, str(error), str(facts.get("error_hint") or
                                              "Check the credentials in syncagent.yaml."))
        return _ok(req, str(facts.get("login_detail") or "logged in"))
    if error:
        return _fail(req, "not checked: the login failed", "Fix the login first.")
    check = _CHECKS.get(req.kind)
    if check is None:
        return _ok(req, "")
    return check(req, facts)


def _ok(req: Requirement, detail: str) -> Row:
    return Row(req.key, req.system, OK, req.what, detail, where=req.where)


def _fail(req: Requirement, detail: str, fix: str, *, blocks: bool | None = None,
          missing: tuple[Value, ...] = ()) -> Row:
    status = BLOCKER if (req.blocks if blocks is None else blocks) else WARNING
    if status == WARNING and req.feature:
        detail = f"{detail} (off: {req.feature})"
    return Row(req.key, req.system, status, req.what, detail, fix, req.where, missing)


def _api_version(req: Requirement, facts: dict[str, Any]) -> Row:
    version, served = facts.get("api_version"), facts.get("versions") or []
    if served and version not in served:
        return _fail(req, f"v{version} is not served by this org",
                     f"Set salesforce.api_version to one it serves, e.g. {served[-1]}.")
    return _ok(req, f"v{version}")


def _api_budget(req: Requirement, facts: dict[str, Any]) -> Row:
    limits = facts.get("limits") or {}
    most, left = limits.get("max"), limits.get("remaining")
    if not most or left is None:
        return _ok(req, "not reported")
    share = int(most * float(facts.get("budget_share") or 0))
    detail = f"{left:,} of {most:,} left today; the agent's share is {share:,}"
    if left < share:
        return _fail(req, detail, "Other integrations use most of today's calls: wait for "
                     "the rolling 24 h window, or lower salesforce.daily_budget_share.")
    return _ok(req, detail)


def _field_entry(facts: dict[str, Any], obj: str, name: str) -> dict[str, Any] | None:
    fields = (facts.get("objects") or {}).get(obj) or {}
    entry = fields.get(name)
    if entry is None:
        entry = next((f for n, f in fields.items() if n.lower() == name.lower()), None)
    return entry


def _missing_field_fix(req: Requirement, facts: dict[str, Any]) -> str:
    if req.custom:
        return f"{SETUP} (creates {req.object}.{req.name} and grants the integration user " \
               "read and edit), or create it in Setup and grant access in a permission set."
    names = list((facts.get("objects") or {}).get(req.object) or {})
    close = difflib.get_close_matches(req.name, names, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]}?" if close else ""
    place = f" at {req.where}" if req.where else ""
    return f"Fix the field name{place} in the mappings.{hint}"


def _sf_field(req: Requirement, facts: dict[str, Any]) -> Row:
    entry = _field_entry(facts, req.object, req.name)
    if entry is None:
        return _fail(req, "missing, or not readable by the integration user",
                     _missing_field_fix(req, facts))
    kind = str(entry.get("type"))
    wanted = SF_COMPATIBLE.get(req.type, set())
    if wanted and kind not in wanted:
        return _fail(req, f"is {kind}, expected {req.type.removeprefix('mapped:')}",
                     _type_fix(req), blocks=req.blocks or req.write)
    if req.length and kind == "string" and int(entry.get("length") or 0) < req.length:
        return _fail(req, f"holds {entry.get('length')} characters, needs {req.length}",
                     f"Make {req.object}.{req.name} at least {req.length} characters long "
                     "in Setup (setup never changes an existing field).")
    if req.write and not (entry.get("updateable") or entry.get("createable")):
        return _fail(req, "the integration user cannot edit it",
                     f"{SETUP} (its permission set grants edit), or grant edit on "
                     f"{req.object}.{req.name} in a permission set.")
    if req.kind == "external_id" and not (entry.get("externalId") and entry.get("unique")):
        return _fail(req, "is not an external id marked unique",
                     f"In Setup, tick External ID and Unique on {req.object}.{req.name}.",
                     blocks=True)
    return _values(req, entry, kind)


def _type_fix(req: Requirement) -> str:
    place = f"change the mapping at {req.where}, or " if req.where else ""
    return (f"The field exists with another type; {place}use a field of type "
            f"{req.type.removeprefix('mapped:')} (setup never changes an existing field's "
            "type: create a new field or change it in Setup).")


def _values(req: Requirement, entry: dict[str, Any], kind: str) -> Row:
    if kind != "picklist" or not req.values:
        return _ok(req, _sf_detail(entry))
    have = {str(p.get("value")).casefold() for p in entry.get("picklistValues") or []
            if p.get("active", True)}
    missing = tuple(v for v in req.values if v.value.casefold() not in have)
    if not missing:
        return _ok(req, f"{len(req.values)} value(s) present")
    if not entry.get("restrictedPicklist"):
        return _ok(req, f"unrestricted picklist: accepts {_listed(missing)}")
    fix = (f"{SETUP} (adds the missing values)" if req.custom else
           f"Add the values to the picklist in Setup, or change the {_what_writes(req)} "
           f"({_places(missing)}).")
    return _fail(req, f"restricted picklist lacks {_listed(missing)}", fix,
                 blocks=req.write or req.blocks, missing=missing)


def _sf_detail(entry: dict[str, Any]) -> str:
    kind = str(entry.get("type"))
    return f"{kind}({entry.get('length')})" if kind == "string" else kind


def _listed(values: tuple[Value, ...]) -> str:
    return ", ".join(repr(v.value) for v in values)


def _places(values: tuple[Value, ...]) -> str:
    places = sorted({str(v.where) for v in values if v.where})
    return ", ".join(places) or "fields.yaml"


def _lead_status(req: Requirement, facts: dict[str, Any]) -> Row:
    entry = _field_entry(facts, "Lead", "Status") or {}
    have = {str(p.get("value")).casefold() for p in entry.get("picklistValues") or []}
    missing = tuple(v for v in req.values if v.value.casefold() not in have)
    if not missing:
        return _ok(req, f"{len(req.values)} value(s) present")
    return _fail(req, f"Lead Status lacks {_listed(missing)}",
                 f"{SETUP} (adds them to the LeadStatus value set), or add them in Setup → "
                 "Object Manager → Lead → Fields → Lead Status, or change lifecycle.yaml "
                 f"({_places(missing)}).", missing=missing)


def _property(req: Requirement, facts: dict[str, Any]) -> Row:
    props = facts.get("properties")
    if props is None:
        return _fail(req, "not checked: the properties could not be read",
                     "Grant crm.schemas.contacts.read to the private app.")
    prop = props.get(req.name)
    if prop is None:
        if req.custom:
            return _fail(req, "missing", f"{SETUP} (creates it in the group "
                         "'syncagent'), or create it in HubSpot.")
        close = difflib.get_close_matches(req.name, list(props), n=1, cutoff=0.6)
        place = f" at {req.where}" if req.where else ""
        return _fail(req, "no such contact property", f"Fix the property name{place}."
                     + (f" Did you mean {close[0]}?" if close else ""))
    kind = str(prop.get("type"))
    wanted = HS_COMPATIBLE.get(req.type, set())
    if wanted and kind not in wanted:
        return _fail(req, f"is {kind}, expected {req.type.removeprefix('mapped:')}",
                     _type_fix(req))
    if req.write and prop.get("read_only"):
        return _fail(req, "is read-only in HubSpot", "Map another property, or set the "
                     f"field's sync rule to one that does not write HubSpot ({req.where}).")
    if kind == "enumeration" and req.write:
        refused = _refused_values(req, prop, facts.get("_salesforce") or {})
        if refused:
            return Row(req.key, req.system, WARNING, req.what, refused, _enum_fix(req),
                       req.where)
    if kind != "enumeration" or not req.values:
        return _ok(req, kind)
    have = {str(o).casefold() for o in prop.get("options") or []}
    missing = tuple(v for v in req.values if v.value.casefold() not in have)
    if not missing:
        return _ok(req, f"enumeration with all {len(req.values)} option(s)")
    fix = (f"{SETUP} (adds the options)" if req.custom else
           f"Add the options in HubSpot, or change the {_what_writes(req)} "
           f"({_places(missing)}).")
    return _fail(req, f"options lack {_listed(missing)}", fix, missing=missing)


def _what_writes(req: Requirement) -> str:
    return "ranges" if req.type == "mapped:ranges" else "translations"


def _refused_values(req: Requirement, prop: dict[str, Any], sf: dict[str, Any]) -> str:
    """Why HubSpot would refuse values the agent writes into this enumeration ("" if none):
    numbers into an enumeration (e.g. ``numberofemployees`` as ranges), or Salesforce picklist
    values that no translation turns into one of its options."""
    options = {str(o).casefold() for o in prop.get("options") or []}
    if req.type in ("mapped:integer", "mapped:number"):
        return ("is an enumeration: HubSpot refuses a number that is not one of its options, "
                "so updates carrying this field fail; give the mapping `ranges:` (see "
                "mappings/README.md)")
    source = req.extra.get("from", "")
    obj, _, name = source.partition(".")
    entry = _field_entry(sf, obj, name) if source else None
    if not entry:
        return ""
    translate = {a.casefold(): b for a, b in req.translate}
    lacking = [str(p.get("value")) for p in entry.get("picklistValues") or []
               if p.get("active", True) and translate.get(
                   str(p.get("value")).casefold(), str(p.get("value"))).casefold() not in options]
    if not lacking:
        return ""
    return (f"{source} values with no option here: {', '.join(repr(v) for v in lacking)}; "
            "HubSpot refuses updates carrying them")


def _enum_fix(req: Requirement) -> str:
    place = f" at {req.where}" if req.where else ""
    return (f"Add a translate: entry for each value to the mapping{place}, add the options "
            "in HubSpot, or give the field a sync rule that does not write HubSpot.")


def _list(req: Requirement, facts: dict[str, Any]) -> Row:
    lists = facts.get("lists")
    if lists is None:
        return _fail(req, "not checked: lists could not be read",
                     "Grant crm.lists.read to the private app.")
    found = lists.get(req.name)
    if not found:
        return _fail(req, "no list of that name", f"{SETUP} (creates a MANUAL list), or "
                     "create one in HubSpot; or fix the name at " + str(req.where))
    kind = str(found.get("processing_type") or "")
    if kind not in ("MANUAL", "SNAPSHOT"):
        return _fail(req, f"is {kind or 'of unknown type'}: HubSpot refuses membership "
                     "writes", "Rename that list and run `syncagent setup --apply` to create "
                     "a MANUAL one with this name, or name a MANUAL list in nurture.yaml.")
    return _ok(req, f"{kind}, id {found.get('id')}")


def _scope(req: Requirement, facts: dict[str, Any]) -> Row:
    missing = facts.get("scopes_missing") or {}
    if req.name in missing:
        return _fail(req, "not granted to the token",
                     f"Add {req.name} to the private app's scopes in HubSpot (Settings → "
                     "Integrations → Private apps) and use its token.")
    if req.name in (facts.get("scopes_unknown") or []):
        return _fail(req, "could not be checked", "Run doctor again.", blocks=False)
    return _ok(req, "granted")


def _events(req: Requirement, facts: dict[str, Any]) -> Row:
    if facts.get("events"):
        return _ok(req, "available")
    return _fail(req, str(facts.get("events_detail") or "not available"),
                 "Nothing to do: the agent falls back to contact analytics properties "
                 "(the events API needs Marketing Hub Enterprise).")


_CHECKS = {"api_version": _api_version, "api_budget": _api_budget, "field": _sf_field,
           "external_id": _sf_field, "lead_status": _lead_status, "property": _property,
           "list": _list, "scope": _scope, "events": _events}
