"""Nurture: which track (HubSpot list + Nurture_Track__c value) a person belongs in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncagent.engine.model import STAGE_RANK, TrackResult
from syncagent.engine.operators import Condition, Predicate, compile_all
from syncagent.engine.rule_files import NurtureFile


@dataclass(frozen=True, slots=True)
class CompiledTrack:
    name: str
    applies: Predicate
    hubspot_list: str
    value: str
    description: str
    reason: str    # "matches {description}": made once, not once per person placed


@dataclass(frozen=True, slots=True)
class CompiledNurture:
    tracks: tuple[CompiledTrack, ...]
    by_key: Mapping[str, CompiledTrack]   # by name and by Nurture_Track__c value (folded)
    exit_on_mql: bool
    exit_on_disqualified: bool


def describe(conditions: list[Condition]) -> str:
    """Conditions as a short phrase for reasons, e.g. 'segment equals leave, persona in [x]'."""
    parts = []
    for c in conditions:
        value = c.value
        if isinstance(value, list):
            value = "[" + ", ".join(str(v) for v in value) + "]"
        parts.append(f"{c.field} {c.op.replace('_', ' ')} {value}" if c.op != "is_blank"
                     else f"{c.field} is blank")
    return ", ".join(parts) or "everyone"


def compile_nurture(spec: NurtureFile) -> CompiledNurture:
    described = [(t, describe(t.when)) for t in spec.tracks]
    tracks = tuple(CompiledTrack(t.name, compile_all(t.when), t.hubspot_list,
                                 t.nurture_track_value, text, f"matches {text}")
                   for t, text in described)
    by_key: dict[str, CompiledTrack] = {}
    for t in tracks:
        by_key.setdefault(t.value.casefold(), t)
        by_key.setdefault(t.name.casefold(), t)
    return CompiledNurture(tracks, by_key, spec.exit.on_mql, spec.exit.on_disqualified)


def nurture(facts: Mapping[str, Any], stage: str, rep_track: str | None, recycle_track: str | None,
            recycled: bool, nt: CompiledNurture) -> TrackResult:
    """The track and why; a rep's pick always wins."""
    if rep_track:
        picked = nt.by_key.get(rep_track.casefold())
        if picked is None:
            return TrackResult(rep_track, None, rep_track, "picked by a rep in Salesforce; kept "
                               "(not a track defined in nurture.yaml, so no HubSpot list)", True)
        return TrackResult(picked.name, picked.hubspot_list, picked.value,
                           "picked by a rep in Salesforce; a rep's choice always wins", True)
    if nt.exit_on_disqualified and stage == "Disqualified":
        return TrackResult(None, None, None, "left nurture: disqualified")
    if nt.exit_on_mql and STAGE_RANK.get(stage, 0) >= STAGE_RANK["MQL"]:
        return TrackResult(None, None, None, f"left nurture: reached {stage}")
    if recycled and recycle_track:
        track = nt.by_key[recycle_track.casefold()]
        return TrackResult(track.name, track.hubspot_list, track.value,
                           "recycled by a rep: back to the recycle track")
    for track in nt.tracks:
        if track.applies(facts):
            return TrackResult(track.name, track.hubspot_list, track.value, track.reason)
    return TrackResult(None, None, None, "no nurture track matches")
