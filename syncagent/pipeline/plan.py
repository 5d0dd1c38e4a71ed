"""Plan: turn each decision into the field values each remote record should hold, and queue
only the real differences.

Nothing changed -> nothing queued: this is what keeps the agent's own writes, read back on the
next pull, from causing more writes. A value a person set by hand after the agent's last write
(an owner, a nurture track) is left alone. What each system is written, and when it gets a
person record of its own (a HubSpot-only person who reaches MQL gets a Salesforce Lead,
created through an upsert on the agent's external id so a retried create can never make a
second one), comes from the systems' profiles (connectors/profile.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from connectors.profile import PersonCreate, SystemProfile
from connectors.registry import profile_of, registered
from state.store import MirrorRow, NewOutboxRow
from syncagent.engine.mapping import CompiledField, Miss, remote_values
from syncagent.engine.model import STAGE_RANK, Decision
from syncagent.pipeline.records import same_value

MQL_RANK = STAGE_RANK["MQL"]
# Refusals (see pipeline/quality.py): (system, object, record id or EVERY_RECORD) ->
# {casefolded field: the value refused, or ANY_VALUE when the field itself was refused}
EVERY_RECORD = "*"
ANY_VALUE = "<any value>"
Refusals = Mapping[tuple[str, str, str], Mapping[str, Any]]


# (system, its profile, its create), as `creating` finds them
Creating = tuple[str, SystemProfile, PersonCreate]


@dataclass(frozen=True)
class PlanContext:
    fields: Sequence[CompiledField]
    # system -> (CRM user id -> that system's owner id), for systems with an owner directory
    owner_for: Mapping[str, Mapping[str, str]]
    ambiguous_emails: frozenset[str] = frozenset()
    # E-mails each system already holds a live person record for: never create another one
    # (a HubSpot upsert by e-mail would land on that record, which is someone else's).
    known_emails: Mapping[str, frozenset[str]] = field(default_factory=dict)
    create_for_nurture: bool = True
    refused: Refusals = field(default_factory=dict)
    # Nurture track value or name (casefolded) -> the list (by name) of that track: the list a
    # contact leaves when its track changes.
    track_lists: Mapping[str, str] = field(default_factory=dict)
    # (system, person object) -> its fields (None or absent: not known, e.g. no schema
    # scope). Cross ids the agent writes (the Salesforce integration's) go only where listed.
    known_fields: Mapping[tuple[str, str], frozenset[str] | None] = field(default_factory=dict)
    # The systems planned for: the registered ones unless told (the agent's connectors).
    profiles: Mapping[str, SystemProfile] = field(default_factory=registered)
    # person id -> (their plan, what `creating` found for it), as `pieces.for_plans` found
    # it for a chunk's plans: read again only for that very plan object.
    creating: Mapping[int, tuple[PersonPlan, list[Creating]]] = field(default_factory=dict)


@dataclass(frozen=True)
class PersonPlan:
    """One evaluated person, with their live records and what the agent wrote on each."""

    person_id: int
    decision: Decision
    profile: Mapping[str, Any]
    records: Sequence[MirrorRow]
    written: Mapping[tuple[str, str, str], Mapping[str, Any]] = field(default_factory=dict)
    email: str | None = None
    evaluated_before: datetime | None = None   # the previous evaluation (None: the first)
    # the decision's reasons_text when the caller built it already (evaluation renders it
    # from the decision in memory): the summary is made once per person, not once more here
    reasons_text: str | None = None


def plan_person(person: PersonPlan, ctx: PlanContext) -> list[NewOutboxRow]:
    return plan_person_noting(person, ctx)[0]


def plan_person_noting(person: PersonPlan, ctx: PlanContext
                       ) -> tuple[list[NewOutboxRow], list[Untranslatable]]:
    """The person's writes, and the values left out because no translation knows them."""
    misses: list[Miss] = []
    parts = outputs(person.decision, person.reasons_text)  # once per person, not per record
    change = _changes_carried(person)
    rows = [row for record in person.records
            if (row := _update_row(person, record, ctx, misses, parts, change)) is not None]
    rows.extend(_creates(person, ctx, parts, change))
    rows.extend(_list_changes(person, ctx, change))
    return rows, _untranslatable(person, misses)


# system -> the change a write to it carries (`carried_change`)
ChangeOf = Callable[[str], datetime | None]


def _changes_carried(person: PersonPlan) -> ChangeOf:
    """`carried_change` for each system the person's rows go to, worked out once per system
    and given to each row as it is made (a row made and then copied with it cost twice)."""
    if person.evaluated_before is None:
        return _no_change   # a person's first evaluation carries none
    known: dict[str, datetime | None] = {}

    def change(system: str) -> datetime | None:
        if system not in known:
            known[system] = carried_change(person, system)
        return known[system]

    return change


def _no_change(_system: str) -> datetime | None:
    return None


def _untranslatable(person: PersonPlan, misses: list[Miss]) -> list[Untranslatable]:
    if not misses:   # the common case: no record look-up to build
        return []
    records = {(r.system, r.object): r.remote_id for r in person.records if not r.deleted}
    return [Untranslatable(person.person_id, miss, records.get((miss.system, miss.object)))
            for miss in misses]


def carried_change(person: PersonPlan, system: str) -> datetime | None:
    """When the change a write to ``system`` carries was made (sync health measures the
    change-to-visible latency from it): the newest modification of the person's live records
    in the other systems, or of their own where only ``system`` holds the person. None when
    that came before the person's previous evaluation, or there was none: a re-evaluation
    for time's sake (decay, an SLA step) carries no remote change, and a person's first
    evaluation would count a backfilled record's whole age."""
    live = [r for r in person.records if not r.deleted and r.modstamp is not None]
    elsewhere = [r.modstamp for r in live if r.system != system]
    changed = max(elsewhere or [r.modstamp for r in live], default=None)  # type: ignore[type-var]
    before = person.evaluated_before
    return changed if changed is not None and before is not None and changed > before \
        else None


@dataclass(frozen=True)
class Untranslatable:
    """A value that was not written because the field's translation table lacks it."""

    person_id: int
    miss: Miss
    record_id: str | None


def outputs(decision: Decision, reasons_text: str | None = None) -> dict[str, Any]:
    """The decision's parts under their neutral names (connectors.profile.OUTPUT_PARTS);
    ``reasons_text``: the decision's, when the caller has it."""
    reasons = decision.reasons_text() if reasons_text is None else reasons_text
    return {"grade": decision.grade.grade, "score": decision.score.score,
            "stage": decision.stage.stage, "segment": decision.segment.segment,
            "reasons": reasons, "mql_date": decision.stage.mql_date,
            "track": decision.track.nurture_track_value, "owner": decision.owner.owner_id}


def _known(values: dict[str, Any]) -> dict[str, Any]:
    """Mapped values worth writing: a value nobody knows never blanks one a system holds.
    (``values`` itself when it holds no such value, as most records' do: no copy to make.)"""
    held = values.values()
    if None not in held and "" not in held:   # (`in` tests as the tuple below does: is, ==)
        return values
    return {name: value for name, value in values.items() if value not in (None, "")}


def desired(person: PersonPlan, system: str, object_name: str, ctx: PlanContext,
            record: MirrorRow | None = None, misses: list[Miss] | None = None,
            parts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What one record of ``system`` should hold: the mapped fields and the decision
    (``parts``: its ``outputs``, when the caller has them already)."""
    profile = ctx.profiles[system]
    values = _known(remote_values(person.profile, ctx.fields, system, object_name,
                                  held=record.fields if record else None, misses=misses))
    _add_parts(values, person, profile, ctx, outputs(person.decision) if parts is None
               else parts)
    present = ctx.known_fields.get((system, object_name)) or frozenset()
    for cross in profile.cross_ids if present else ():
        if not cross.written or cross.object != object_name or cross.field not in present:
            continue
        for other in person.records:
            if (other.system, other.object) == cross.target and not other.deleted:
                values.setdefault(cross.field, other.remote_id)
    return values


def _add_parts(values: dict[str, Any], person: PersonPlan, profile: SystemProfile,
               ctx: PlanContext, decided: Mapping[str, Any]) -> None:
    """The decision's parts (``decided``, from ``outputs``) as ``profile``'s system takes
    them, set in ``values`` under its field names, in ``decided``'s order and the owner last
    (in place, as they come: no dict of them to build, then merge, per record)."""
    named, crm = profile.outputs, profile.crm is not None
    skip_track = crm and person.decision.track.picked_by_rep  # the rep's pick stays as it is
    stages = profile.stage_values
    for name, value in decided.items():
        if name == "owner" or (skip_track and name == "track"):
            continue
        if name == "stage" and stages is not None:
            value = stages.get(value, profile.stage_fallback)
        if name in named:
            values[named[name]] = value
    owner = decided["owner"]
    if crm:
        if not (person.decision.owner.kind == "user" and owner):
            return
    elif owner and owner in ctx.owner_for.get(profile.system, {}):
        owner = ctx.owner_for[profile.system][owner]
    else:
        return
    if "owner" in named:
        values[named["owner"]] = owner


def _update_row(person: PersonPlan, record: MirrorRow, ctx: PlanContext, misses: list[Miss],
                parts: Mapping[str, Any], change: ChangeOf) -> NewOutboxRow | None:
    profile = ctx.profiles.get(record.system)
    if profile is None or record.deleted:
        return None
    for name in profile.read_only_when:   # (a loop: no generator to make per record)
        if record.fields.get(name) in (True, "true"):
            return None
    wanted = desired(person, record.system, record.object, ctx, record, misses, parts)
    written = person.written.get((record.system, record.object, record.remote_id), _UNWRITTEN)
    changes = _changes(wanted, record, written, profile)
    changes = _without_wording_only_change(_without_refused(changes, record, ctx.refused),
                                           record, written, profile)
    if not changes:
        return None
    if _stage_moves_back(changes, record, profile):
        changes["__clear_first"] = [profile.outputs["stage"]]
    return NewOutboxRow(record.system, record.object, "update", changes,
                        f"{record.system}:{record.object}:{record.remote_id}:update",
                        record.remote_id, person.person_id, change(record.system))


_UNWRITTEN: Mapping[str, Any] = MappingProxyType({})   # a record the agent never wrote


def _changes(wanted: Mapping[str, Any], record: MirrorRow, written: Mapping[str, Any],
             profile: SystemProfile) -> dict[str, Any]:
    """The wanted values the record does not hold already (as the API takes them), but for
    those a person changed by hand. A rescore compares some thirty values per person, so
    `_held`, `same_value`'s common cases and `_changed_by_a_person`'s first test are
    inlined (same results): most values are text held as the same text, or are not held at
    all (the agent's outputs before its first write)."""
    wire = wire_of(record.system)   # looked up once per record, not once per value
    fields, human = record.fields, profile.human_owned
    changes = {}
    for name, value in wanted.items():
        if name in fields:
            held = fields[name]
        else:
            held = written[name].get("value") if name in written else None
        if held is None:   # same_value(value, None)
            if value is None or value == "":
                continue
        elif type(value) is str and type(held) is str:
            if value == held:
                continue
        elif type(value) is type(held) and type(held) in _NUMBERS and value == held:
            continue   # (equal numbers are the same; unequal ones may be, within 1e-9)
        elif same_value(value, held):
            continue
        if name not in human or not _changed_by_a_person(name, record, written, profile):
            changes[name] = wire(value)
    return changes


_NUMBERS = frozenset({int, float})   # exactly these types: a bool compares as text


def wire_of(system: str) -> Callable[[Any], Any]:
    """The system's conversion of a value to what its API takes (`wire_value`'s, looked up
    once: a rescore converts some twenty values per person)."""
    profile = profile_of(system)
    return profile.wire if profile is not None else _as_is


def _as_is(value: Any) -> Any:
    return value


def _without_wording_only_change(changes: dict[str, Any], record: MirrorRow,
                                 written: Mapping[str, Any], profile: SystemProfile
                                 ) -> dict[str, Any]:
    """Reasons are rewritten with any decision value, but a change of wording alone (a decayed
    point, "disqualified" becoming "stays disqualified") is not worth an API call."""
    if len(changes) != 1:   # (the common case first: no look-up of the reasons' field)
        return changes
    reasons = profile.output("reasons")
    if reasons is not None and reasons in changes \
            and _held(reasons, record, written) not in (None, ""):
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


def _stage_moves_back(changes: Mapping[str, Any], record: MirrorRow,
                      profile: SystemProfile) -> bool:
    """A system with a stage order (HubSpot) ignores an earlier stage unless the field is
    cleared first."""
    order = profile.stage_order
    if not order:
        return False
    stage = profile.output("stage")
    if stage is None:
        return False
    new, held = changes.get(stage), record.fields.get(stage)
    if not new or not held or new not in order or held not in order:
        return False
    return order.index(new) < order.index(held)


def _held(name: str, record: MirrorRow, written: Mapping[str, Any]) -> Any:
    """What the record holds now: as read, or, for a field the streams do not read (long
    text, to keep query pages at 2,000 rows), what the agent last wrote there."""
    if name in record.fields or name not in written:
        return record.fields.get(name)
    return written[name].get("value")


def _changed_by_a_person(name: str, record: MirrorRow, written: Mapping[str, Any],
                         profile: SystemProfile) -> bool:
    """A hand-chosen field whose value differs from what the agent last wrote there."""
    if name not in profile.human_owned or name not in written:
        return False
    return not same_value(written[name].get("value"), record.fields.get(name))


def _creates(person: PersonPlan, ctx: PlanContext, parts: Mapping[str, Any],
             change: ChangeOf) -> list[NewOutboxRow]:
    """A person record in each system that creates one for this person and has none."""
    email = person.email
    if not email or email in ctx.ambiguous_emails:
        return []
    return [_create(person, ctx, profile, create, email, parts, change(system))
            for system, profile, create in creating(person, ctx)
            if email not in ctx.known_emails.get(system, ())]


def creating(person: PersonPlan, ctx: PlanContext) -> list[Creating]:
    """The systems that would create a person record for this person, but for what is known
    of their e-mail (held there already, or ambiguous): `_creates` without ``ctx``'s e-mails.
    `pieces.for_plans` reads those e-mails for the persons this finds any for, only, and
    keeps what it found in the context (``creating``) for `_creates`."""
    kept = ctx.creating.get(person.person_id)
    if kept is not None and kept[0] is person:   # this very plan (a frozen one): as found
        return kept[1]
    if not person.email:
        return []
    decision = person.decision
    wanted = {"mql": STAGE_RANK.get(decision.stage.stage, 0) >= MQL_RANK,
              "nurture": decision.track.track is not None and ctx.create_for_nurture}
    found: list[Creating] = []
    live: set[tuple[str, str]] | None = None
    for system, profile in ctx.profiles.items():
        create = profile.create
        if create is None or not wanted[create.when]:
            continue
        if live is None:   # (built once, and only for a person a system may create for)
            live = {(r.system, r.object) for r in person.records if not r.deleted}
        for held in profile.person_objects:
            if (system, held.object) in live:
                break
        else:
            found.append((system, profile, create))
    return found


def _create(person: PersonPlan, ctx: PlanContext, profile: SystemProfile,
            create: PersonCreate, email: str, parts: Mapping[str, Any],
            changed_at: datetime | None) -> NewOutboxRow:
    """An upsert on the create's key, so a retried create never makes a second record."""
    system = profile.system
    wire = wire_of(system)   # `wire_value`'s, looked up once per create
    fields = {name: wire(value)
              for name, value in desired(person, system, create.object, ctx, parts=parts).items()
              if value is not None}
    for name, value in create.defaults.items():
        fields.setdefault(name, value)
    key = email if create.key == "email" else f"sa-{person.person_id}"
    fields.update({create.key_field: key, "__key": key, "__person_record": True})
    return NewOutboxRow(system, create.object, "upsert", fields,
                        f"{system}:{create.object}:create:person:{person.person_id}",
                        person_id=person.person_id, changed_at=changed_at)


def _list_changes(person: PersonPlan, ctx: PlanContext,
                  change: ChangeOf) -> list[NewOutboxRow]:
    """Keep list membership in step with the nurture track (a rep's pick included): join the
    track's list, and leave the list of the track the record holds now."""
    track = person.decision.track
    rows: list[NewOutboxRow] = []
    for record in person.records:
        profile = ctx.profiles.get(record.system)
        if profile is None or record.object != profile.list_object or record.deleted:
            continue
        if track.hubspot_list is not None:
            rows.append(_membership(person, record, track.hubspot_list, "add",
                                    {"track": track.track}, change))
        held_field = profile.output("track")
        held = str(record.fields.get(held_field) or "").casefold() if held_field else ""
        old_list = ctx.track_lists.get(held) if held else None
        if old_list is not None and old_list.casefold() != (track.hubspot_list or
                                                            "").casefold():
            rows.append(_membership(person, record, old_list, "remove", {"left": held},
                                    change))
    return rows


def _membership(person: PersonPlan, record: MirrorRow, list_name: str, action: str,
                note: dict[str, Any], change: ChangeOf) -> NewOutboxRow:
    system, member = record.system, record.remote_id
    return NewOutboxRow(system, f"list:{list_name}", f"list_{action}", note,
                        f"{system}:list:{list_name}:{action}:{member}", remote_id=member,
                        person_id=person.person_id, changed_at=change(system))
