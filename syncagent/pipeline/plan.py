"""Plan: turn each decision into the field values each remote record should hold, and queue
only the real differences.

Nothing changed -> nothing queued: this is what keeps the agent's own writes, read back on the
next pull, from causing more writes. A value a person set by hand after the agent's last write
(an owner, a nurture track) is left alone. A HubSpot-only person who reaches MQL gets a
Salesforce Lead, created through an upsert on the agent's external id so a retried create can
never make a second one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from state.store import MirrorRow, NewOutboxRow
from syncagent.engine.mapping import CompiledField, Miss, remote_values
from syncagent.engine.model import STAGE_RANK, Decision
from syncagent.pipeline.records import (
    HS_CONTACT,
    HS_OUTPUTS,
    HS_STAGE,
    HS_STAGE_FIELD,
    HS_STAGE_ORDER,
    HUMAN_OWNED,
    SF_EXTERNAL_ID,
    SF_OUTPUTS,
    same_value,
    wire_value,
)

MQL_RANK = STAGE_RANK["MQL"]
# Refusals (see pipeline/quality.py): (system, object, record id or EVERY_RECORD) ->
# {casefolded field: the value refused, or ANY_VALUE when the field itself was refused}
EVERY_RECORD = "*"
ANY_VALUE = "<any value>"
Refusals = Mapping[tuple[str, str, str], Mapping[str, Any]]
PLACEHOLDER = "[not provided]"  # Salesforce requires LastName and Company on a Lead


@dataclass(frozen=True)
class PlanContext:
    fields: Sequence[CompiledField]
    hubspot_owner_for: Mapping[str, str]  # Salesforce user id -> HubSpot owner id
    ambiguous_emails: frozenset[str] = frozenset()
    # E-mails each system already holds a live person record for: never create another one
    # (a HubSpot upsert by e-mail would land on that record, which is someone else's).
    known_emails: Mapping[str, frozenset[str]] = field(default_factory=dict)
    create_hubspot_for_nurture: bool = True
    refused: Refusals = field(default_factory=dict)
    # Nurture track value or name (casefolded) -> the HubSpot list (by name) of that track:
    # the list a contact leaves when its track changes.
    track_lists: Mapping[str, str] = field(default_factory=dict)
    # The portal's contact properties (None: not known, e.g. no schema scope). Optional
    # properties (the Salesforce integration's ids) are written only when listed here.
    hubspot_properties: frozenset[str] | None = None


@dataclass(frozen=True)
class PersonPlan:
    """One evaluated person, with their live records and what the agent wrote on each."""

    person_id: int
    decision: Decision
    profile: Mapping[str, Any]
    records: Sequence[MirrorRow]
    written: Mapping[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    email: str | None = None


def plan_person(person: PersonPlan, ctx: PlanContext) -> list[NewOutboxRow]:
    return plan_person_noting(person, ctx)[0]


def plan_person_noting(person: PersonPlan, ctx: PlanContext
                       ) -> tuple[list[NewOutboxRow], list[Untranslatable]]:
    """The person's writes, and the values left out because no translation knows them."""
    misses: list[Miss] = []
    rows = [row for record in person.records
            if (row := _update_row(person, record, ctx, misses)) is not None]
    rows.extend(_creates(person, ctx))
    rows.extend(_list_changes(person, ctx))
    records = {(r.system, r.object): r.remote_id for r in person.records if not r.deleted}
    notes = [Untranslatable(person.person_id, miss, records.get((miss.system, miss.object)))
             for miss in misses]
    return rows, notes


@dataclass(frozen=True)
class Untranslatable:
    """A value that was not written because the field's translation table lacks it."""

    person_id: int
    miss: Miss
    record_id: str | None


def outputs(decision: Decision) -> dict[str, Any]:
    """The decision's parts under their neutral names (see records.SF_OUTPUTS)."""
    return {"grade": decision.grade.grade, "score": decision.score.score,
            "stage": decision.stage.stage, "segment": decision.segment.segment,
            "reasons": decision.reasons_text(), "mql_date": decision.stage.mql_date,
            "track": decision.track.nurture_track_value, "owner": decision.owner.owner_id}


def _known(values: dict[str, Any]) -> dict[str, Any]:
    """Mapped values worth writing: a value nobody knows never blanks one a system holds."""
    return {name: value for name, value in values.items() if value not in (None, "")}


def desired_salesforce(person: PersonPlan, object_name: str, ctx: PlanContext,
                       record: MirrorRow | None = None, misses: list[Miss] | None = None
                       ) -> dict[str, Any]:
    values = _known(remote_values(person.profile, ctx.fields, "salesforce", object_name,
                                  held=record.fields if record else None, misses=misses))
    parts = outputs(person.decision)
    if person.decision.track.picked_by_rep:
        parts.pop("track")  # the rep's pick stays as it is in Salesforce
    if person.decision.owner.kind != "user" or not parts["owner"]:
        parts.pop("owner")
    values.update({SF_OUTPUTS[name]: value for name, value in parts.items()})
    return values


def desired_hubspot(person: PersonPlan, ctx: PlanContext, record: MirrorRow | None = None,
                    misses: list[Miss] | None = None) -> dict[str, Any]:
    values = _known(remote_values(person.profile, ctx.fields, "hubspot", "contacts",
                                  held=record.fields if record else None, misses=misses))
    parts = outputs(person.decision)
    parts["stage"] = HS_STAGE.get(parts["stage"], "lead")
    owner = parts.pop("owner")
    if owner and owner in ctx.hubspot_owner_for:
        parts["owner"] = ctx.hubspot_owner_for[owner]
    values.update({HS_OUTPUTS[name]: value for name, value in parts.items()})
    present = ctx.hubspot_properties or frozenset()
    for other in person.records:
        if other.system == "salesforce" and not other.deleted:
            key = "salesforcecontactid" if other.object == "Contact" else "salesforceleadid"
            if key in present:   # only where HubSpot's Salesforce integration made them
                values.setdefault(key, other.remote_id)
    return values


def _update_row(person: PersonPlan, record: MirrorRow, ctx: PlanContext,
                misses: list[Miss]) -> NewOutboxRow | None:
    if record.deleted or record.fields.get("IsConverted") in (True, "true"):
        return None  # Salesforce refuses updates to converted leads
    if record.system == "salesforce":
        desired = desired_salesforce(person, record.object, ctx, record, misses)
    else:
        desired = desired_hubspot(person, ctx, record, misses)
    written = person.written.get((record.system, record.object, record.remote_id), {})
    changes = {name: wire_value(record.system, value) for name, value in desired.items()
               if not same_value(value, _held(name, record, written))
               and not _changed_by_a_person(name, record, written)}
    changes = _without_wording_only_change(_without_refused(changes, record, ctx.refused),
                                           record, written)
    if not changes:
        return None
    if record.system == "hubspot" and _stage_moves_back(changes, record):
        changes["__clear_first"] = [HS_STAGE_FIELD]
    return NewOutboxRow(record.system, record.object, "update", changes,
                        f"{record.system}:{record.object}:{record.remote_id}:update",
                        remote_id=record.remote_id, person_id=person.person_id)


def _without_wording_only_change(changes: dict[str, Any], record: MirrorRow,
                                 written: Mapping[str, Any]) -> dict[str, Any]:
    """Reasons are rewritten with any decision value, but a change of wording alone (a decayed
    point, "disqualified" becoming "stays disqualified") is not worth an API call."""
    reasons = SF_OUTPUTS["reasons"] if record.system == "salesforce" else HS_OUTPUTS["reasons"]
    if set(changes) == {reasons} and _held(reasons, record, written) not in (None, ""):
        return {}
    return changes


def _without_refused(changes: dict[str, Any], record: MirrorRow,
                     refused: Refusals) -> dict[str, Any]:
    """A field the API refused is not sent again (until the mapping or the value changes)."""
    if not refused:
        return changes
    anywhere = refused.get((record.system, record.object, EVERY_RECORD), {})
    here = refused.get((record.system, record.object, record.remote_id), {})
    kept = {}
    for name, value in changes.items():
        key = name.casefold()
        if key in anywhere:
            continue
        if key in here and (here[key] == ANY_VALUE or same_value(here[key], value)):
            continue
        kept[name] = value
    return kept


def _stage_moves_back(changes: Mapping[str, Any], record: MirrorRow) -> bool:
    """HubSpot ignores an earlier lifecycle stage unless the property is cleared first."""
    new, held = changes.get(HS_STAGE_FIELD), record.fields.get(HS_STAGE_FIELD)
    if not new or not held or new not in HS_STAGE_ORDER or held not in HS_STAGE_ORDER:
        return False
    return HS_STAGE_ORDER.index(new) < HS_STAGE_ORDER.index(held)


def _held(name: str, record: MirrorRow, written: Mapping[str, Any]) -> Any:
    """What the record holds now: as read, or, for a field the streams do not read (long
    text, to keep query pages at 2,000 rows), what the agent last wrote there."""
    if name in record.fields or name not in written:
        return record.fields.get(name)
    return written[name].get("value")


def _changed_by_a_person(name: str, record: MirrorRow, written: Mapping[str, Any]) -> bool:
    """A hand-chosen field whose value differs from what the agent last wrote there."""
    if name not in HUMAN_OWNED or name not in written:
        return False
    return not same_value(written[name].get("value"), record.fields.get(name))


def _creates(person: PersonPlan, ctx: PlanContext) -> list[NewOutboxRow]:
    live = {(r.system, r.object) for r in person.records if not r.deleted}
    rows: list[NewOutboxRow] = []
    rank = STAGE_RANK.get(person.decision.stage.stage, 0)
    has_sf = bool(live & {("salesforce", "Lead"), ("salesforce", "Contact")})
    email = person.email
    if not email or email in ctx.ambiguous_emails:
        return rows
    known = ctx.known_emails
    if not has_sf and rank >= MQL_RANK and email not in known.get("salesforce", ()):
        rows.append(_salesforce_lead(person, ctx))
    wants_nurture = person.decision.track.track is not None
    if (("hubspot", "contacts") not in live and wants_nurture and ctx.create_hubspot_for_nurture
            and email not in known.get("hubspot", ())):
        rows.append(_hubspot_contact(person, ctx, email))
    return rows


def _salesforce_lead(person: PersonPlan, ctx: PlanContext) -> NewOutboxRow:
    fields = {name: wire_value("salesforce", value)
              for name, value in desired_salesforce(person, "Lead", ctx).items()
              if value is not None}
    fields.setdefault("LastName", PLACEHOLDER)
    fields.setdefault("Company", PLACEHOLDER)
    key = f"sa-{person.person_id}"
    fields.update({"__key": key, "__person_record": True, SF_EXTERNAL_ID: key})
    return NewOutboxRow("salesforce", "Lead", "upsert", fields,
                        f"salesforce:Lead:create:person:{person.person_id}",
                        person_id=person.person_id)


def _hubspot_contact(person: PersonPlan, ctx: PlanContext, email: str) -> NewOutboxRow:
    fields = {name: wire_value("hubspot", value)
              for name, value in desired_hubspot(person, ctx).items() if value is not None}
    fields.update({"email": email, "__key": email, "__person_record": True})
    return NewOutboxRow("hubspot", "contacts", "upsert", fields,
                        f"hubspot:contacts:create:person:{person.person_id}",
                        person_id=person.person_id)


def _list_changes(person: PersonPlan, ctx: PlanContext) -> list[NewOutboxRow]:
    """Keep HubSpot list membership in step with the nurture track (a rep's pick included):
    join the track's list, and leave the list of the track the contact holds now."""
    track = person.decision.track
    rows: list[NewOutboxRow] = []
    for record in person.records:
        if (record.system, record.object) != HS_CONTACT or record.deleted:
            continue
        contact = record.remote_id
        if track.hubspot_list is not None:
            rows.append(_membership(person, track.hubspot_list, "add", contact,
                                    {"track": track.track}))
        held = str(record.fields.get(HS_OUTPUTS["track"]) or "").casefold()
        old_list = ctx.track_lists.get(held) if held else None
        if old_list is not None and old_list.casefold() != (track.hubspot_list or
                                                            "").casefold():
            rows.append(_membership(person, old_list, "remove", contact, {"left": held}))
    return rows


def _membership(person: PersonPlan, list_name: str, action: str, contact: str,
                note: dict[str, Any]) -> NewOutboxRow:
    return NewOutboxRow("hubspot", f"list:{list_name}", f"list_{action}", note,
                        f"hubspot:list:{list_name}:{action}:{contact}", remote_id=contact,
                        person_id=person.person_id)
