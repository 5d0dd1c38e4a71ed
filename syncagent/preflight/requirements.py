"""What the settings and mappings ask of the org and the portal, as plain data (no I/O).

Each :class:`Requirement` is one row of `syncagent doctor`: a login that must work, a field
that must exist with a type, picklist values the agent can write, a HubSpot property, a
nurture list, a token scope, the events API. ``blocks`` says whether an unmet requirement
stops a sync (✘) or only switches a feature off (!). Values and mapped names carry the mapping
file and line they come from, so `check --live` can point at them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import get_args

from connectors.hubspot.profile import OUTPUTS as HS_OUTPUTS
from connectors.hubspot.profile import STAGES as HUBSPOT_STAGES
from connectors.salesforce.profile import EXTERNAL_ID
from connectors.salesforce.profile import OUTPUTS as SF_OUTPUTS
from connectors.salesforce.profile import PROFILE as SF_PROFILE
from syncagent.engine import Rules
from syncagent.engine.ranges import labels as range_labels
from syncagent.engine.rule_files import Stage
from syncagent.preflight.lines import MappingLines, Where

# Agent-written Salesforce fields on Lead and Contact: (name, kind, length, blocks, feature).
# Grade, score, stage and the external id are written by every cycle; the rest serve one
# feature each, which the connector switches off when the field is missing.
SF_OUTPUT_FIELDS: tuple[tuple[str, str, int, bool, str], ...] = (
    (SF_OUTPUTS["grade"], "text", 2, True, "grade"),
    (SF_OUTPUTS["score"], "number", 0, True, "score"),
    (SF_OUTPUTS["stage"], "picklist", 0, True, "lifecycle stage"),
    (SF_OUTPUTS["segment"], "picklist", 0, False, "segment"),
    (SF_OUTPUTS["track"], "picklist", 0, False, "nurture track"),
    (SF_OUTPUTS["reasons"], "longtext", 32768, False, "score reasons"),
    (SF_OUTPUTS["mql_date"], "datetime", 0, False, "MQL date"),
)
SF_EXTERNAL_ID = (EXTERNAL_ID, 64)
TASK_KEY = ("Idempotency_Key__c", 80)
# HubSpot properties the agent writes: (name, type, blocks, feature). A property that does not
# exist makes HubSpot refuse the whole batch, so every written one blocks.
HS_OUTPUT_PROPERTIES: tuple[tuple[str, str, str], ...] = (
    (HS_OUTPUTS["grade"], "string", "grade"),
    (HS_OUTPUTS["score"], "number", "score"),
    (HS_OUTPUTS["segment"], "enumeration", "segment"),
    (HS_OUTPUTS["track"], "enumeration", "nurture track"),
    (HS_OUTPUTS["reasons"], "string", "score reasons"),
    (HS_OUTPUTS["mql_date"], "datetime", "MQL date"),
)
HS_GROUP = "syncagent"
# HubSpot's own lifecycle stages the agent writes (the profile's translation of its stages).
HS_STAGES = tuple(dict.fromkeys(HUBSPOT_STAGES.values()))
# Scopes per feature: (scope, feature, blocks).
SCOPES: tuple[tuple[str, str, bool], ...] = (
    # tasks are engagements: the contact scopes cover creating them and finding the agent's
    # own (HubSpot's tasks guide lists exactly these two)
    ("crm.objects.contacts.read", "reading contacts and engagements, finding the agent's "
     "tasks", True),
    ("crm.objects.contacts.write", "writing contacts, creating alert and SLA tasks", True),
    ("crm.schemas.contacts.read", "checking contact properties", True),
    ("crm.objects.owners.read", "owner mapping (HubSpot owner from the Salesforce owner)",
     False),
    ("crm.lists.read", "nurture list membership", False),
    ("crm.lists.write", "nurture list membership", False),
    ("crm.schemas.contacts.write", "`syncagent setup --apply` creating properties", False),
)
WRITES_SALESFORCE = frozenset({"two_way", "always_hubspot", "prefer_salesforce_unless_blank"})
WRITES_HUBSPOT = frozenset({"two_way", "always_salesforce", "prefer_salesforce_unless_blank"})


@dataclass(frozen=True)
class Value:
    """A value the agent may write into a picklist or enumeration, and where it is named."""

    value: str
    where: Where | None = None


@dataclass(frozen=True)
class Requirement:
    """One thing the org or portal must have; see the module docstring."""

    key: str                 # stable: "salesforce:field:Lead.Segment__c"
    system: str              # salesforce | hubspot
    kind: str                # login api_version api_budget field values external_id
    #                          lead_status property list scope events
    what: str                # as the doctor's table shows it
    blocks: bool
    feature: str = ""
    object: str = ""
    name: str = ""
    type: str = ""           # wanted type (see checks.COMPATIBLE)
    length: int = 0
    read: bool = False
    write: bool = False
    values: tuple[Value, ...] = ()
    custom: bool = False     # setup may create it (Salesforce custom fields, our properties)
    where: Where | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    # a HubSpot enumeration written from a Salesforce picklist: Salesforce value -> HubSpot
    translate: tuple[tuple[str, str], ...] = field(default=(), compare=False)


def requirements(rules: Rules, lines: MappingLines, *, uses_events: bool = True
                 ) -> list[Requirement]:
    """Every requirement the mappings imply, Salesforce first, in a stable order."""
    out = [Requirement("salesforce:login", "salesforce", "login", "Salesforce login", True),
           Requirement("salesforce:api_version", "salesforce", "api_version",
                       "Salesforce API version", True),
           Requirement("salesforce:api_budget", "salesforce", "api_budget",
                       "Salesforce daily API calls left for the agent's share", False,
                       feature="syncing today")]
    out.extend(_salesforce_outputs(rules, lines))
    out.extend(_salesforce_mapped(rules, lines))
    out.extend(_salesforce_others(rules, lines))
    out.append(Requirement("hubspot:login", "hubspot", "login", "HubSpot private-app token",
                           True))
    out.extend(Requirement(f"hubspot:scope:{scope}", "hubspot", "scope",
                           f"HubSpot scope {scope}", blocks, feature=feature, name=scope)
               for scope, feature, blocks in SCOPES)
    out.extend(_hubspot_properties(rules, lines))
    out.extend(_nurture_lists(rules, lines))
    if uses_events:
        out.append(Requirement("hubspot:events", "hubspot", "events",
                               "HubSpot events API (web events)", False,
                               feature="web events from the events API (below Enterprise the "
                                       "agent reads contact analytics properties instead)"))
    return _merged(out)


def _salesforce_outputs(rules: Rules, lines: MappingLines) -> list[Requirement]:
    values = {"Lifecycle_Stage__c": tuple(Value(s) for s in get_args(Stage)),
              "Segment__c": segment_values(rules, lines),
              "Nurture_Track__c": track_values(rules, lines)}
    out: list[Requirement] = []
    for obj in ("Lead", "Contact"):
        for name, kind, length, blocks, feature in SF_OUTPUT_FIELDS:
            out.append(_sf_field(obj, name, kind, blocks, feature, length=length,
                                 read=True, write=True, values=values.get(name, ())))
        ext, ext_length = SF_EXTERNAL_ID
        out.append(_sf_field(obj, ext, "text", True, "creating records without duplicates",
                             length=ext_length, read=False, write=True, kind="external_id"))
    return out


def _sf_field(obj: str, name: str, wanted: str, blocks: bool, feature: str, *,
              length: int = 0, read: bool = False, write: bool = False,
              values: tuple[Value, ...] = (), where: Where | None = None,
              kind: str = "field") -> Requirement:
    access = "read and edit" if read and write else ("edit" if write else "read")
    unique = ", external id, unique" if kind == "external_id" else ""
    described = "; ".join(part for part in (f"{_type_text(wanted, length)}{unique}", access)
                          if part)
    shown = f"{obj}.{name} ({described})"
    return Requirement(f"salesforce:field:{obj}.{name}", "salesforce", kind, shown, blocks,
                       feature=feature, object=obj, name=name, type=wanted, length=length,
                       read=read, write=write, values=values, custom=name.endswith("__c"),
                       where=where)


def _type_text(kind: str, length: int) -> str:
    return f"{kind}({length})" if kind == "text" and length else kind


def _salesforce_mapped(rules: Rules, lines: MappingLines) -> list[Requirement]:
    """Each field fields.yaml maps on Lead and Contact: read always, edited when the sync rule
    can write Salesforce; translated picklist values must exist."""
    out: list[Requirement] = []
    for i, spec in enumerate(rules.compiled.fields):
        write = spec.sync in WRITES_SALESFORCE
        values = tuple(Value(remote, lines.at("fields.yaml", ("fields", i, "translate", n,
                                                              "salesforce")))
                       for n, remote in enumerate(_translated(rules, i, "salesforce")))
        ranged = _range_options(rules, lines, i, "salesforce")
        for obj in ("Lead", "Contact"):
            name = spec.remote_name("salesforce", obj)
            if not name:
                continue
            where = lines.at("fields.yaml", ("fields", i, "salesforce", obj.lower()))
            # a missing field the agent only reads switches its rules off; one it writes
            # would fail every write of the record
            out.append(_sf_field(obj, name, "mapped:ranges" if ranged else f"mapped:{spec.type}",
                                 write, f"the mapped field {spec.name}", read=True, write=write,
                                 values=(*values, *ranged) if write else (), where=where))
    return out


def _range_options(rules: Rules, lines: MappingLines, index: int, system: str
                   ) -> tuple[Value, ...]:
    """The options a field's ``ranges`` write into ``system`` (numbers become one of them)."""
    spec = rules.fields.fields[index]
    return tuple(Value(option, lines.at("fields.yaml", ("fields", index, "ranges", n, system)))
                 for n, option in range_labels(spec.ranges, system))


def _translated(rules: Rules, index: int, system: str) -> list[str]:
    spec = rules.fields.fields[index]
    return [getattr(t, system) or t.canonical for t in spec.translate]


def _salesforce_others(rules: Rules, lines: MappingLines) -> list[Requirement]:
    lifecycle = rules.lifecycle
    reasons = [*lifecycle.disqualify.recycle_reasons, *lifecycle.disqualify.disqualify_reasons]
    reason_values = tuple(
        Value(r, lines.find("lifecycle.yaml", ("disqualify", key), r))
        for key, items in (("recycle_reasons", lifecycle.disqualify.recycle_reasons),
                           ("disqualify_reasons", lifecycle.disqualify.disqualify_reasons))
        for r in items)
    key, key_length = TASK_KEY
    out = [
        _sf_field("Lead", "Disqualified_Reason__c", "picklist", False,
                  "disqualification reasons", read=True, values=reason_values)
        if reasons else None,
        _sf_field("Task", key, "text", True, "alert tasks without duplicates",
                  length=key_length, read=True, write=True, kind="external_id"),
        _sf_field("User", "Territory__c", "text", False, "territory routing", length=80,
                  read=True) if _uses_territory(rules) else None,
        _sf_field("User", "Out_Of_Office__c", "checkbox", False,
                  "skipping reps who are out of office", read=True),
        _sf_field("User", "ManagerId", "", False,
                  "escalations to the owner's manager (User.ManagerId)", read=True),
        *_task_fields(),
    ]
    statuses = tuple(
        Value(s, lines.find("lifecycle.yaml", (stage, "lead_status_in"), s))
        for stage, items in (("sal", lifecycle.sal.lead_status_in),
                             ("sql", lifecycle.sql.lead_status_in),
                             ("disqualify", lifecycle.disqualify.lead_status_in))
        for s in items)
    out.append(Requirement("salesforce:lead_status", "salesforce", "lead_status",
                           "Lead Status values lifecycle.yaml names", False,
                           feature="stage changes by Lead Status", object="Lead",
                           name="Status", type="picklist", values=_unique(statuses)))
    return [r for r in out if r is not None]


def _task_fields() -> list[Requirement]:
    """The Task fields an alert or SLA task is created with (the profile's TaskSpec); the
    type is checked where it matters (the picklists the agent writes, the due date)."""
    spec = SF_PROFILE.tasks
    if spec is None:
        return []
    feature = "alert and SLA tasks in Salesforce"
    picked = {spec.priority: tuple(Value(v) for v in spec.priority_values.values()),
              spec.status or "": (Value(spec.status_open),) if spec.status_open else ()}
    kinds = {spec.priority: "picklist", spec.status or "": "picklist",
             spec.body: "longtext", spec.due: "mapped:date"}
    names = [spec.subject, spec.body, spec.due, spec.priority, spec.owner, spec.status,
             spec.who]
    return [_sf_field(spec.object, name, kinds.get(name, ""), False, feature, write=True,
                      values=picked.get(name, ()))
            for name in names if name]


def _uses_territory(rules: Rules) -> bool:
    return any(r.kind == "territory" for r in rules.compiled.routing.rules)


def segment_values(rules: Rules, lines: MappingLines) -> tuple[Value, ...]:
    names = rules.scoring.segments.names
    return tuple(Value(getattr(names, q), lines.at("scoring.yaml", ("segments", "names", q)))
                 for q in type(names).model_fields)


def track_values(rules: Rules, lines: MappingLines) -> tuple[Value, ...]:
    return tuple(Value(t.nurture_track_value,
                       lines.at("nurture.yaml", ("tracks", i, "nurture_track_value")))
                 for i, t in enumerate(rules.nurture.tracks))


def _hubspot_properties(rules: Rules, lines: MappingLines) -> list[Requirement]:
    values = {"lead_segment": segment_values(rules, lines),
              "nurture_track": track_values(rules, lines)}
    out = [Requirement(f"hubspot:property:{name}", "hubspot", "property",
                       f"contact property {name} ({kind})", True, feature=feature, name=name,
                       type=kind, write=True, values=values.get(name, ()), custom=True)
           for name, kind, feature in HS_OUTPUT_PROPERTIES]
    out.append(Requirement("hubspot:property:lifecyclestage", "hubspot", "property",
                           "contact property lifecyclestage (enumeration)", True,
                           feature="lifecycle stage", name="lifecyclestage",
                           type="enumeration", write=True,
                           values=tuple(Value(s) for s in HS_STAGES)))
    for i, spec in enumerate(rules.compiled.fields):
        prop = spec.remote_name("hubspot", "contacts")
        if not prop:
            continue
        write = spec.sync in WRITES_HUBSPOT
        translated = tuple(
            Value(v, lines.at("fields.yaml", ("fields", i, "translate", n, "hubspot")))
            for n, v in enumerate(_translated(rules, i, "hubspot")))
        ranged = _range_options(rules, lines, i, "hubspot")
        source = next((f"{obj}.{name}" for obj in ("Lead", "Contact")
                       if (name := spec.remote_name("salesforce", obj))), "")
        out.append(Requirement(
            f"hubspot:property:{prop}", "hubspot", "property",
            f"contact property {prop} ({'read and write' if write else 'read'})",
            write, feature=f"the mapped field {spec.name}", name=prop,
            type="mapped:ranges" if ranged else f"mapped:{spec.type}", read=True, write=write,
            values=(*translated, *ranged) if write else (),
            where=lines.at("fields.yaml", ("fields", i, "hubspot")),
            extra={"from": source} if write and source else {},
            translate=tuple((sf, hs) for sf, hs in zip(_translated(rules, i, "salesforce"),
                                                       _translated(rules, i, "hubspot"),
                                                       strict=True))))
    return out


def _nurture_lists(rules: Rules, lines: MappingLines) -> list[Requirement]:
    out = []
    for i, track in enumerate(rules.nurture.tracks):
        name = track.hubspot_list
        out.append(Requirement(
            f"hubspot:list:{name}", "hubspot", "list",
            f"contact list \"{name}\" (MANUAL or SNAPSHOT)", False,
            feature=f"HubSpot list membership of track {track.name}", name=name, custom=True,
            where=lines.at("nurture.yaml", ("tracks", i))))
    return out


def _unique(values: Iterable[Value]) -> tuple[Value, ...]:
    seen: dict[str, Value] = {}
    for v in values:
        seen.setdefault(v.value, v)
    return tuple(seen.values())


def _merged(items: list[Requirement]) -> list[Requirement]:
    """One requirement per key: a field the agent writes and fields.yaml also maps is one row,
    reading and writing if either does, with the values of both."""
    by_key: dict[str, Requirement] = {}
    for item in items:
        old = by_key.get(item.key)
        if old is None:
            by_key[item.key] = item
            continue
        by_key[item.key] = Requirement(
            old.key, old.system, old.kind, old.what, old.blocks or item.blocks,
            feature=old.feature, object=old.object, name=old.name, type=old.type,
            length=max(old.length, item.length), read=old.read or item.read,
            write=old.write or item.write, values=_unique((*old.values, *item.values)),
            custom=old.custom, where=old.where or item.where)
    return list(by_key.values())

