"""Alerts: one per person per cooldown, the first rule in file order, to the owner or the
out-of-office stand-in, high priority for grade A and better."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from syncagent.engine import (
    Activity,
    CrmFacts,
    EngineState,
    RoutingState,
    Rules,
    UserDirectory,
    evaluate,
    load_rules,
)

from .conftest import NOW
from .helpers import FIT, act, hot_activities, person
from .test_sla import TEAM, away

PRICING = "https://x.com/pricing"


def visit(hours_after: float, url: str = PRICING) -> Activity:
    at = NOW + timedelta(hours=hours_after)
    return Activity("page_view", at, {"url": url}, id=f"pv-{hours_after}")


def test_a_second_visit_within_the_cooldown_gives_no_alert(rules: Rules) -> None:
    first, _ = evaluate(person(activities=hot_activities()), rules, NOW, RoutingState(), TEAM)
    assert len(first.alerts) == 1
    assert first.state.last_alert_at == NOW
    owner = CrmFacts(owner_id=first.owner.owner_id)
    acts = [*hot_activities(), visit(3)]
    second, _ = evaluate(person(activities=acts, crm=owner, previous=first.state), rules,
                         NOW + timedelta(hours=3, minutes=5), RoutingState(), TEAM)
    assert second.alerts == ()
    assert second.state.last_alert_at == NOW     # the cooldown still counts from the first
    acts.append(visit(25))
    third, _ = evaluate(person(activities=acts, crm=owner, previous=second.state), rules,
                        NOW + timedelta(hours=25, minutes=5), RoutingState(), TEAM)
    assert [a.activity_detail for a in third.alerts] == [PRICING]
    assert third.state.last_alert_at == NOW + timedelta(hours=25, minutes=5)


def test_several_rules_firing_give_one_alert_the_first_in_file_order(rules: Rules) -> None:
    decision, _ = evaluate(person(activities=hot_activities()), rules, NOW, RoutingState(), TEAM)
    names = [a.name for a in rules.scoring.alerts]
    assert names[:2] == ["hot-lead-acted", "hot-lead-form"]   # both fire for this person
    assert [a.kind for a in decision.alerts] == ["hot-lead-acted"]


def test_alert_names_owner_recipient_activity_and_priority(rules: Rules) -> None:
    decision, _ = evaluate(person(activities=hot_activities()), rules, NOW, RoutingState(), TEAM)
    alert = decision.alerts[0]
    assert decision.grade.grade == "A"
    assert (alert.owner_id, alert.recipient_id) == ("005A", "005A")
    assert (alert.activity_kind, alert.activity_detail) == ("page_view", PRICING)
    assert alert.high_priority
    assert alert.idempotency_key == "p1:hot-lead-acted:page_view-0.2"


def test_grade_below_a_is_not_high_priority(rules: Rules) -> None:
    weaker = {**FIT, "industry": "Retail"}
    decision, _ = evaluate(person(profile=weaker, activities=hot_activities()), rules, NOW,
                           RoutingState(), TEAM)
    assert decision.alerts and decision.grade.grade not in ("A", "A+")
    assert not decision.alerts[0].high_priority


def test_out_of_office_owner_alert_goes_to_the_manager(rules: Rules) -> None:
    previous = EngineState(stage="MQL", mql_date=NOW - timedelta(days=1), owner_id="005A",
                           assigned_at=NOW - timedelta(days=1),
                           evaluated_at=NOW - timedelta(hours=1),
                           routed_by="north-america-smb")
    decision, _ = evaluate(person(activities=[*hot_activities(), visit(0)],
                                  crm=CrmFacts(owner_id="005A"), previous=previous),
                           rules, NOW, RoutingState(), away(TEAM, "005A"))
    alert = decision.alerts[0]
    assert (alert.owner_id, alert.recipient_id) == ("005A", "005M")
    assert "Cara is out of office" in alert.message


def test_out_of_office_user_rule(mappings_copy: Path) -> None:
    path = mappings_copy / "routing.yaml"
    path.write_text(path.read_text().replace("out_of_office: manager",
                                             "out_of_office: user:vic.vp@example.com"))
    rules = load_rules(mappings_copy)
    previous = EngineState(stage="MQL", mql_date=NOW - timedelta(days=1), owner_id="005A",
                           evaluated_at=NOW - timedelta(hours=1))
    decision, _ = evaluate(person(activities=[*hot_activities(), visit(0)],
                                  crm=CrmFacts(owner_id="005A"), previous=previous),
                           rules, NOW, RoutingState(), away(TEAM, "005A"))
    assert decision.alerts[0].recipient_id == "005V"


def test_queue_owned_person_alert_has_no_recipient(rules: Rules) -> None:
    decision, _ = evaluate(person(activities=hot_activities()), rules, NOW, RoutingState(),
                           UserDirectory.of([]))
    assert decision.owner.kind == "queue"
    assert [(a.owner_id, a.recipient_id) for a in decision.alerts] == [(None, None)]


def test_zero_cooldown_alerts_on_every_new_activity(mappings_copy: Path) -> None:
    path = mappings_copy / "scoring.yaml"
    path.write_text(path.read_text().replace("alert_cooldown_hours: 24",
                                             "alert_cooldown_hours: 0"))
    rules = load_rules(mappings_copy)
    first, _ = evaluate(person(activities=hot_activities()), rules, NOW, RoutingState(), TEAM)
    acts = [*hot_activities(), visit(1)]
    second, _ = evaluate(person(activities=acts, crm=CrmFacts(owner_id="005A"),
                                previous=first.state), rules, NOW + timedelta(hours=1),
                         RoutingState(), TEAM)
    assert [a.activity_detail for a in second.alerts] == [PRICING]


def test_activity_outside_the_alert_pattern_gives_nothing(rules: Rules) -> None:
    blog = [act("page_view", 0.1, url="https://x.com/blog")]
    decision, _ = evaluate(person(activities=blog), rules, NOW, RoutingState(), TEAM)
    assert decision.alerts == ()
    assert decision.state.last_alert_at is None

