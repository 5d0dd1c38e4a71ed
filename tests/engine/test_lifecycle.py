"""Lifecycle: the waterfall, rep-driven stages, recycle, and the MQL date."""

from __future__ import annotations

from datetime import timedelta

from syncagent.engine import CrmFacts, EngineState, Rules, evaluate

from .conftest import NOW
from .helpers import POOR_FIT, act, hot_activities, person


def stage_of(rules: Rules, **kwargs: object) -> tuple[str, str]:
    decision, _ = evaluate(person(**kwargs), rules, NOW)  # type: ignore[arg-type]
    return decision.stage.stage, decision.stage.reason


def test_waterfall_from_subscriber_to_mql(rules: Rules) -> None:
    assert stage_of(rules, activities=[])[0] == "Subscriber"
    assert stage_of(rules, profile=POOR_FIT, activities=[act("webinar_registered", 40)])[0] \
        == "Inquiry"
    assert stage_of(rules, activities=[act("form_submission", 5)])[0] == "Lead"
    stage, reason = stage_of(rules, activities=hot_activities())
    assert stage == "MQL"
    assert "grade A ≥ B and score" in reason


def test_mql_needs_both_grade_and_score(rules: Rules) -> None:
    assert stage_of(rules, profile=POOR_FIT, activities=hot_activities())[0] == "Lead"


def test_rep_acceptance_makes_sal_and_conversion_or_opportunity_makes_sql(rules: Rules) -> None:
    assert stage_of(rules, crm=CrmFacts(lead_status="Accepted"))[0] == "SAL"
    assert stage_of(rules, crm=CrmFacts(lead_status="Qualified"))[0] == "SQL"
    assert stage_of(rules, crm=CrmFacts(converted=True))[0] == "SQL"
    assert stage_of(rules, crm=CrmFacts(has_opportunity=True))[0] == "Opportunity"
    assert stage_of(rules, crm=CrmFacts(is_customer=True))[0] == "Customer"


def test_stages_never_move_backwards(rules: Rules) -> None:
    stage, reason = stage_of(rules, activities=[], previous=EngineState(stage="SAL"))
    assert stage == "SAL"
    assert "never move backwards" in reason


def test_recycle_reason_sends_the_lead_back_to_nurture_and_resets_the_score(rules: Rules) -> None:
    previous = EngineState(stage="MQL", mql_date=NOW - timedelta(days=3),
                           seen_lead_status="Accepted")
    decision, _ = evaluate(person(activities=hot_activities(), previous=previous,
                                  crm=CrmFacts(lead_status="Recycled",
                                               disqualified_reason="Timing")), rules, NOW)
    assert decision.stage.stage == "Recycled"
    assert decision.stage.recycled
    assert decision.stage.mql_date is None
    assert decision.score.score == 0
    assert decision.state.recycled_at == NOW
    assert decision.track.track == "recycled-reengage"


def test_the_same_rep_status_does_not_recycle_twice(rules: Rules) -> None:
    crm = CrmFacts(lead_status="Recycled", disqualified_reason="Timing")
    first, _ = evaluate(person(crm=crm, previous=EngineState(stage="MQL")), rules, NOW)
    later = NOW + timedelta(days=10)
    fresh = [act("form_submission", -9.9), act("form_submission", -9.5),
             act("meeting_set", -9.8), act("page_view", -9.9, url="https://x.com/pricing")]
    second, _ = evaluate(person(crm=crm, previous=first.state, activities=fresh), rules, later)
    assert second.stage.stage == "MQL"   # re-qualified: a new MQL episode
    assert second.stage.mql_date == later
    assert not second.stage.recycled


def test_disqualify_reason_disqualifies_and_stays(rules: Rules) -> None:
    crm = CrmFacts(lead_status="Unqualified", disqualified_reason="Bad Data")
    first, _ = evaluate(person(crm=crm, previous=EngineState(stage="Lead")), rules, NOW)
    assert first.stage.stage == "Disqualified"
    second, _ = evaluate(person(crm=crm, previous=first.state, activities=hot_activities()),
                         rules, NOW + timedelta(hours=1))
    assert second.stage.stage == "Disqualified"
    assert second.track.track is None


def test_mql_date_is_stamped_once_per_episode(rules: Rules) -> None:
    first, _ = evaluate(person(activities=hot_activities()), rules, NOW)
    assert first.stage.mql_date == NOW
    again, _ = evaluate(person(activities=hot_activities(), previous=first.state), rules,
                        NOW + timedelta(hours=2))
    assert again.stage.mql_date == NOW
