"""``evaluate``: one person, their activities, the rules and the time in; a Decision out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from syncagent.engine.grading import grade, pick_persona
from syncagent.engine.lifecycle import rep_event, stage
from syncagent.engine.loader import Rules
from syncagent.engine.mapping import CanonicalProfile, RemoteRecordLike, map_person, remote_values
from syncagent.engine.model import (
    STAGE_RANK,
    Activity,
    Alert,
    Decision,
    EngineState,
    GradeResult,
    OwnerResult,
    PersonInput,
    RoutingState,
    SlaTimer,
    UserDirectory,
)
from syncagent.engine.normalise import email_domain
from syncagent.engine.nurture import nurture
from syncagent.engine.routing import route
from syncagent.engine.scoring import score, segment

_EMPTY_USERS = UserDirectory()
_ALERT_WINDOW = timedelta(days=1)


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
                         lc.recycle_factor, seen)
    facts["score"] = score_result.score
    segment_result = segment(grade_rank, score_result.score, rules.compiled.scoring)
    facts["segment"] = segment_result.segment
    inquired = seen is not None and not seen.isdisjoint(lc.inquiry_kinds)
    stage_result = stage(previous, crm, grade_rank, score_result.score, inquired, event, lc, now)
    facts["stage"] = stage_result.stage

    owner, state_out = route(person, facts, stage_result.stage, rules.compiled.routing, directory,
                             state_in, now)
    in_recycle = stage_result.stage in ("Recycled", "Nurture")
    track = nurture(facts, stage_result.stage, crm.rep_track, lc.recycle_track, in_recycle,
                    rules.compiled.nurture)
    assigned_at = now if owner.changed else (previous.assigned_at if previous else None)
    alerts = _alerts(person, rules, facts, owner, now)
    timers = _sla(stage_result.stage, stage_result.mql_date, assigned_at, owner, directory,
                  rules)
    state = EngineState(stage_result.stage, stage_result.mql_date, track.track, owner.owner_id,
                        assigned_at, recycled_at, now, crm.lead_status, crm.disqualified_reason)
    decision = Decision(person.person_id, now, grade_result, score_result, segment_result,
                        stage_result, owner, track, persona, alerts, timers, state)
    return decision, state_out


def _alerts(person: PersonInput, rules: Rules, facts: Mapping[str, Any], owner: OwnerResult,
            now: datetime) -> tuple[Alert, ...]:
    compiled = rules.compiled.scoring.alerts
    if not compiled:
        return ()
    previous = person.previous
    since = previous.evaluated_at if previous and previous.evaluated_at else now - _ALERT_WINDOW
    out: list[Alert] = []
    for alert in compiled:
        if not alert.applies(facts):
            continue
        newest: Activity | None = None
        for activity in person.activities:
            if activity.kind in alert.kinds and since < activity.occurred_at <= now \
                    and alert.activity_test(activity.details) \
                    and (newest is None or activity.occurred_at > newest.occurred_at):
                newest = activity
        if newest is None:
            continue
        detail = next((str(newest.details[k]) for k in ("url", "form", "campaign", "subject")
                       if newest.details.get(k)), "")
        who = facts.get("email") or person.person_id
        message = (f"{alert.name}: {who} ({facts.get('company') or 'unknown company'}), grade "
                   f"{facts['grade']}, score {facts['score']}, just did {newest.kind}"
                   f"{' ' + detail if detail else ''}")
        key = f"{person.person_id}:{alert.name}:{newest.id or newest.occurred_at.isoformat()}"
        out.append(Alert(alert.name, owner.owner_id if owner.kind == "user" else None, message,
                         key, newest.occurred_at))
    return tuple(out)


def _sla(stage_name: str, mql_date: datetime | None, assigned_at: datetime | None,
         owner: OwnerResult, users: UserDirectory, rules: Rules) -> tuple[SlaTimer, ...]:
    """Handoff deadlines while an MQL waits for its owner to accept it."""
    if stage_name != "MQL" or owner.kind != "user":
        return ()
    start = max(d for d in (mql_date, assigned_at) if d is not None) \
        if (mql_date or assigned_at) else None
    if start is None:
        return ()
    remind, escalate, reassign = rules.compiled.routing.sla_hours
    user = users.find(owner.owner_id or "")
    manager = user.manager_id if user else None
    return (
        SlaTimer("remind", start + timedelta(hours=remind), owner.owner_id,
                 f"Remind the owner to accept this MQL within {remind:g} h"),
        SlaTimer("escalate", start + timedelta(hours=escalate), manager or owner.owner_id,
                 f"Escalate to the owner's manager if not accepted within {escalate:g} h"),
        SlaTimer("reassign", start + timedelta(hours=reassign), owner.owner_id,
                 f"Reassign through routing if not accepted within {reassign:g} h"),
    )


def stage_rank(stage_name: str) -> int:
    """Position of a stage in the waterfall (side stages rank with Lead)."""
    return STAGE_RANK[stage_name]
