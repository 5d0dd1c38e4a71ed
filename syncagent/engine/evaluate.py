"""``evaluate``: one person, their activities, the rules and the time in; a Decision out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from syncagent.engine.alerts import alerts
from syncagent.engine.grading import grade, pick_persona
from syncagent.engine.handoff import hand_over
from syncagent.engine.lifecycle import rep_event, stage
from syncagent.engine.loader import Rules
from syncagent.engine.mapping import CanonicalProfile, RemoteRecordLike, map_person, remote_values
from syncagent.engine.model import (
    STAGE_RANK,
    Decision,
    EngineState,
    GradeResult,
    PersonInput,
    RoutingState,
    UserDirectory,
)
from syncagent.engine.normalise import email_domain
from syncagent.engine.nurture import nurture
from syncagent.engine.scoring import score, segment

_EMPTY_USERS = UserDirectory()


def profile_from_records(records: Sequence[RemoteRecordLike], rules: Rules) -> CanonicalProfile:
    """Canonical profile (and each value's source system) from one person's remote records."""
    return map_person(records, rules.compiled.fields)


def desired_remote_fields(profile: Mapping[str, Any], rules: Rules, system: str,
                          object_name: str) -> dict[str, Any]:
    """Mapped field values a remote record should hold, per the fields' sync rules."""
    return remote_values(profile, rules.compiled.fields, system, object_name)


def person_facts(person: PersonInput, rules: Rules
                 ) -> tuple[dict[str, Any], GradeResult, int]:
    """The facts rules test (profile, e-mail domain, status, persona, grade) and the grade.

    Shared with the calibration's feature extraction, so it sees exactly what scoring sees."""
    crm = person.crm
    facts: dict[str, Any] = dict(person.profile)
    facts["email_domain"] = email_domain(facts.get("email"))
    facts["lead_status"] = crm.lead_status
    facts["disqualified_reason"] = crm.disqualified_reason
    facts["persona"] = pick_persona(facts, rules.compiled.grading)
    grade_result, grade_rank = grade(facts, rules.compiled.grading)
    facts["grade"], facts["grade_rank"], facts["profile"] = \
        grade_result.grade, grade_rank, grade_result.profile
    return facts, grade_result, grade_rank


def evaluate(person: PersonInput, rules: Rules, now: datetime,
             routing_state: RoutingState | None = None,
             users: UserDirectory | None = None) -> tuple[Decision, RoutingState]:
    """Decide grade, score, segment, stage, owner, track, alerts and SLA timers for a person.

    Pure: the same arguments always give the same Decision and RoutingState.
    """
    state_in = routing_state if routing_state is not None else RoutingState()
    directory = users if users is not None else _EMPTY_USERS
    previous, crm = person.previous, person.crm
    facts, grade_result, grade_rank = person_facts(person, rules)
    persona = facts["persona"]

    lc = rules.compiled.lifecycle
    event = rep_event(previous, crm, lc)
    recycled_at = now if event == "recycle" else (previous.recycled_at if previous else None)
    # Which activity kinds occurred only matters below Lead; skip collecting them otherwise.
    early = previous is None or STAGE_RANK.get(previous.stage or "", 0) < STAGE_RANK["Lead"]
    seen: set[str] | None = set() if early else None
    score_result = score(person.activities, facts, rules.compiled.scoring, now, recycled_at,
                         lc.recycle_factor, seen, person.created_at)
    facts["score"] = score_result.score
    segment_result = segment(grade_rank, score_result.score, rules.compiled.scoring)
    facts["segment"] = segment_result.segment
    inquired = seen is not None and not seen.isdisjoint(lc.inquiry_kinds)
    stage_result = stage(previous, crm, grade_rank, score_result.score, inquired, event, lc, now)
    facts["stage"] = stage_result.stage

    handed = hand_over(person, facts, stage_result, rules.compiled.routing, directory, state_in,
                       now)
    owner = handed.owner
    in_recycle = stage_result.stage in ("Recycled", "Nurture")
    track = nurture(facts, stage_result.stage, crm.rep_track, lc.recycle_track, in_recycle,
                    rules.compiled.nurture)
    fired, last_alert_at = alerts(person, rules, facts, owner, directory, handed.routed_by, now)
    state = EngineState(stage_result.stage, stage_result.mql_date, track.track, owner.owner_id,
                        handed.assigned_at, recycled_at, now, crm.lead_status,
                        crm.disqualified_reason, last_alert_at, handed.sal_at,
                        handed.routed_by, handed.note, handed.routed_from,
                        handed.routed_why)
    decision = Decision(person.person_id, now, grade_result, score_result, segment_result,
                        stage_result, owner, track, persona, fired, handed.timers, state)
    return decision, handed.routing


def stage_rank(stage_name: str) -> int:
    """Position of a stage in the waterfall (side stages rank with Lead)."""
    return STAGE_RANK[stage_name]
