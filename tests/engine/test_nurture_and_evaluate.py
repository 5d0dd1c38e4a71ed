"""Nurture tracks, alerts, SLA timers, and the decision as a whole."""

from __future__ import annotations

import json
from datetime import timedelta

from syncagent.engine import CrmFacts, EngineState, RoutingState, Rules, evaluate

from .conftest import NOW
from .helpers import FIT, POOR_FIT, USERS, act, hot_activities, person


def test_automatic_track_by_segment(rules: Rules) -> None:
    decision, _ = evaluate(person(activities=[act("email_click", 2)]), rules, NOW)
    assert decision.segment.segment == "nurture-then-sales"
    assert decision.track.track == "high-fit-education"
    assert decision.track.hubspot_list == "High Fit Education"
    assert decision.track.nurture_track_value == "High Fit Education"
    assert "segment equals nurture-then-sales" in decision.track.reason


def test_automatic_track_by_persona_and_stage(rules: Rules) -> None:
    profile = {**POOR_FIT, "title": "Marketing Intern"}
    decision, _ = evaluate(person(profile=profile), rules, NOW)
    assert decision.persona == "marketing-leader"
    assert decision.track.track == "marketing-leaders"


def test_rep_picked_track_always_wins(rules: Rules) -> None:
    decision, _ = evaluate(person(activities=hot_activities(),
                                  crm=CrmFacts(rep_track="Newsletter")), rules, NOW)
    assert decision.stage.stage == "MQL"
    assert decision.track.track == "newsletter"
    assert decision.track.picked_by_rep


def test_tracks_exit_on_mql_and_on_disqualification(rules: Rules) -> None:
    mql, _ = evaluate(person(activities=hot_activities(),
                             previous=EngineState(stage="Lead", track="high-fit-education")),
                      rules, NOW)
    assert mql.track.track is None and "reached MQL" in mql.track.reason
    dq, _ = evaluate(person(crm=CrmFacts(lead_status="Unqualified",
                                         disqualified_reason="Not a Fit")), rules, NOW)
    assert dq.track.track is None and "disqualified" in dq.track.reason


def test_hot_lead_alert_names_the_owner_once_per_activity(rules: Rules) -> None:
    decision, _ = evaluate(person(activities=hot_activities()), rules, NOW, RoutingState(),
                           USERS)
    kinds = {a.kind for a in decision.alerts}
    assert "hot-lead-acted" in kinds
    alert = next(a for a in decision.alerts if a.kind == "hot-lead-acted")
    assert alert.owner_id == decision.owner.owner_id
    assert alert.idempotency_key.startswith("p1:hot-lead-acted:")
    later, _ = evaluate(person(activities=hot_activities(), previous=decision.state), rules,
                        NOW + timedelta(minutes=5), RoutingState(), USERS)
    assert later.alerts == ()   # nothing new since the last evaluation


def test_sla_timers_count_business_hours_from_the_next_opening(rules: Rules) -> None:
    # NOW is Wednesday 04:00 in New York: the clock starts at 09:00 (14:00 UTC).
    decision, _ = evaluate(person(activities=hot_activities()), rules, NOW, RoutingState(),
                           USERS)
    timers = {t.kind: t.due_at for t in decision.sla}
    opening = NOW.replace(hour=14)
    assert timers["remind"] == opening + timedelta(hours=4)
    assert timers["escalate"] == opening + timedelta(days=2, hours=8)   # Wed, Thu, Fri 8 h


def test_decision_is_json_serialisable_with_a_reasons_summary(rules: Rules) -> None:
    decision, _ = evaluate(person(activities=hot_activities()), rules, NOW, RoutingState(),
                           USERS)
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["grade"]["grade"] == "A"
    assert data["stage"]["mql_date"] == NOW.isoformat()
    text = decision.reasons_text()
    for word in ("Grade A", "Score", "Segment sales-now", "Stage MQL", "Owner:", "Track"):
        assert word in text
    assert len(decision.reasons_text(limit=40)) == 40


def test_state_round_trips_for_the_next_evaluation(rules: Rules) -> None:
    decision, _ = evaluate(person(profile=FIT, activities=hot_activities()), rules, NOW)
    restored = EngineState.from_dict(json.loads(json.dumps(decision.state.to_dict())))
    assert restored == decision.state
