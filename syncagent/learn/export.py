"""Export persons from the state DB as they stood N days after creation, each labelled by
whether the outcome followed within H days (the persons file of backtest and calibrate).

No leakage: a snapshot holds only the activities up to its time and no CRM status (today's
status may be the outcome itself). Fit fields are the records' current values, the one
approximation: the mirror keeps no history of them. Persons whose window has not ended yet
(censored), or who reached the outcome by the snapshot (nothing left to predict), are left
out and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from connectors.profile import SystemProfile
from connectors.registry import registered
from state.store import ActivityRow, MirrorRow, StateStore
from syncagent.engine import Rules, profile_from_records
from syncagent.pipeline.created import moment, person_created
from syncagent.pipeline.decide import EPOCH

Outcome = Literal["sql", "opportunity", "won"]
CHUNK = 1_000
# Activities that are the outcome (or prove it happened), by outcome.
OUTCOME_KINDS: Mapping[str, frozenset[str]] = {
    "sql": frozenset({"opportunity_created"}),
    "opportunity": frozenset({"opportunity_created"}),
    "won": frozenset(),
}
# The stages (the agent's stage history) that mean the outcome happened.
OUTCOME_STAGES: Mapping[str, frozenset[str]] = {
    "sql": frozenset({"SQL", "Opportunity", "Customer"}),
    "opportunity": frozenset({"Opportunity", "Customer"}),
    "won": frozenset({"Customer"}),
}


@dataclass(frozen=True)
class ExportSpec:
    as_of_days: float
    outcome: Outcome
    within_days: float
    now: datetime


@dataclass
class ExportTally:
    """How many persons were written and why others were not."""

    written: int = 0
    positives: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def _converted(records: Sequence[MirrorRow], profiles: Mapping[str, SystemProfile]
               ) -> datetime | None:
    """When the CRM converted the person's lead (a conversion makes the lead an SQL)."""
    for r in records:
        crm = profiles[r.system].crm if r.system in profiles else None
        if crm is not None and crm.converted_date_field \
                and r.fields.get(crm.converted_field) in (True, "true"):
            when = moment(r.fields.get(crm.converted_date_field))
            if when is not None:
                return when
    return None


def _became_opportunity(records: Sequence[MirrorRow], profiles: Mapping[str, SystemProfile]
                        ) -> list[datetime]:
    out = []
    for r in records:
        profile = profiles.get(r.system)
        if profile is not None and profile.opportunity_date_field:
            when = moment(r.fields.get(profile.opportunity_date_field))
            if when is not None:
                out.append(when)
    return out


def reached_at(store: StateStore, outcome: Outcome) -> dict[int, datetime]:
    """Person id -> when the agent's stage history first shows the outcome's stages. Rows
    backfilled from old decisions are left out: their time is the evaluation's, not the
    change's."""
    first: dict[int, datetime] = {}
    for change in store.handoff.history_between():
        if change.to_stage in OUTCOME_STAGES[outcome] and change.cause != "backfill" \
                and (change.person_id not in first or change.at < first[change.person_id]):
            first[change.person_id] = change.at
    return first


def outcome_time(outcome: Outcome, records: Sequence[MirrorRow],
                 activities: Sequence[ActivityRow],
                 profiles: Mapping[str, SystemProfile],
                 staged: datetime | None = None) -> datetime | None:
    """The first moment the outcome is known to have happened, or None: the stage history's
    ``staged``, an outcome activity, a record's "became an opportunity" date (an opportunity
    is also an SQL), a lead conversion (an SQL)."""
    times = [a.occurred_at for a in activities if a.kind in OUTCOME_KINDS[outcome]]
    if staged is not None:
        times.append(staged)
    if outcome in ("sql", "opportunity"):
        times += _became_opportunity(records, profiles)
    if outcome == "sql":
        converted = _converted(records, profiles)
        if converted is not None:
            times.append(converted)
    return min(times) if times else None


def _activity_doc(a: ActivityRow) -> dict[str, Any]:
    return {"kind": a.kind, "occurred_at": a.occurred_at.isoformat(), "details": a.details,
            "id": f"{a.system}:{a.source_id}"}


def person_document(pid: int, records: Sequence[MirrorRow], activities: Sequence[ActivityRow],
                    spec: ExportSpec, rules: Rules, profiles: Mapping[str, SystemProfile],
                    staged: datetime | None = None) -> tuple[dict[str, Any] | None, str]:
    """The person's snapshot document, or None and why it is left out."""
    created = person_created(records, profiles)
    if created is None:
        return None, "no creation date"
    snapshot = created + timedelta(days=spec.as_of_days)
    if snapshot + timedelta(days=spec.within_days) > spec.now:
        return None, "window not over yet"
    happened = outcome_time(spec.outcome, records, activities, profiles, staged)
    if happened is not None and happened <= snapshot:
        return None, "outcome before the snapshot"
    positive = happened is not None and happened <= snapshot + timedelta(days=spec.within_days)
    # the mapping wants a modstamp on every record (newest value wins); replace() fills it in,
    # which the type checker cannot see through MirrorRow's optional field
    stamped = [replace(r, modstamp=r.modstamp or EPOCH) for r in records]
    profile = profile_from_records(stamped, rules).values  # type: ignore[arg-type]
    earlier = sorted((a for a in activities if a.occurred_at <= snapshot
                      and a.kind not in OUTCOME_KINDS[spec.outcome]),
                     key=lambda a: a.occurred_at)
    return {"person_id": str(pid), "now": snapshot.isoformat(), "outcome": positive,
            "created_at": created.isoformat(), "profile": profile,
            "activities": [_activity_doc(a) for a in earlier]}, ""


def export_persons(store: StateStore, rules: Rules, spec: ExportSpec, tally: ExportTally
                   ) -> Iterator[dict[str, Any]]:
    """Each exportable person's document, chunk by chunk (the tally counts the rest)."""
    profiles = registered()
    staged = reached_at(store, spec.outcome)
    refs_of: dict[int, list[tuple[str, str, str]]] = {}
    for ref, pid in store.persons.links().items():
        refs_of.setdefault(pid, []).append(ref)
    ids = sorted(refs_of)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        refs = [ref for pid in chunk for ref in refs_of[pid]]
        rows = _rows(store, refs)
        acts = store.mirror.activities_for((o, r) for _s, o, r in refs)
        for pid in chunk:
            live = [rows[ref] for ref in refs_of[pid] if ref in rows and not rows[ref].deleted]
            found = [a for _s, o, r in refs_of[pid] for a in acts.get((o, r), [])]
            doc, why = person_document(pid, live, found, spec, rules, profiles,
                                       staged.get(pid)) if live else (None, "records deleted")
            if doc is None:
                tally.skipped[why] += 1
                continue
            tally.written += 1
            tally.positives += bool(doc["outcome"])
            yield doc


def _rows(store: StateStore, refs: Sequence[tuple[str, str, str]]
          ) -> dict[tuple[str, str, str], MirrorRow]:
    by_object: dict[tuple[str, str], list[str]] = {}
    for system, object_name, rid in refs:
        by_object.setdefault((system, object_name), []).append(rid)
    return {(s, o, row.remote_id): row for (s, o), ids in by_object.items()
            for row in store.mirror.records(s, o, ids)}
