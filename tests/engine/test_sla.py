"""SLA timers: the hand-off schedule in business hours, escalation recipients, the reassign
step, the qualify window, and stand-ins for out-of-office reps."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine import CrmFacts, Decision, EngineState, RoutingState, Rules, evaluate
from syncagent.engine.loader import load_rules
from syncagent.engine.model import User, UserDirectory

from .helpers import hot_activities, person

NEW_YORK = ZoneInfo("America/New_York")
# Friday 2026-12-04 15:00 New York: the 4-hour reminder lands on Monday.
FRIDAY_3PM = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)

TEAM = UserDirectory.of([
    User("005A", "cara.smb@example.com", "Cara", manager_id="005M"),
    User("005B", "dan.smb@example.com", "Dan", manager_id="005M"),
    User("005C", "eve.smb@example.com", "Eve"),
    User("005M", "max.boss@example.com", "Max"),
    User("005V", "vic.vp@example.com", "Vic"),
    User("005F", "fay.emea@example.com", "Fay", territory="EMEA", manager_id="005M"),
    User("005G", "gus.emea@example.com", "Gus", territory="EMEA"),
])


def away(directory: UserDirectory, *ids: str) -> UserDirectory:
    return UserDirectory.of(replace(u, out_of_office=u.id in ids)
                            for u in directory.by_id.values())


def ny(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=NEW_YORK).astimezone(UTC)   # type: ignore[misc]


def routed(rules: Rules, now: datetime = FRIDAY_3PM, users: UserDirectory = TEAM,
           **kwargs: object) -> Decision:
    """A hot US lead's first evaluation: MQL, routed to the na-smb pool (Cara first)."""
    decision, _ = evaluate(person(activities=hot_activities(), **kwargs),  # type: ignore[arg-type]
                           rules, now, RoutingState(), users)
    return decision


def later(rules: Rules, first: Decision, now: datetime, users: UserDirectory = TEAM,
          crm: CrmFacts | None = None, profile: dict[str, object] | None = None) -> Decision:
    """The same person evaluated again, its CRM owner now the one the agent wrote."""
    facts = crm or CrmFacts(owner_id=first.owner.owner_id)
    decision, _ = evaluate(person(profile=profile, activities=hot_activities(), crm=facts,
                                  previous=first.state), rules, now, RoutingState(), users)
    return decision


def with_routing(mappings_copy: Path, old: str, new: str) -> Rules:
    path = mappings_copy / "routing.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return load_rules(mappings_copy)


# --- the hand-off schedule ---------------------------------------------------------------

def test_friday_afternoon_handover_reminds_on_monday(rules: Rules) -> None:
    decision = routed(rules)
    assert decision.owner.owner_id == "005A"
    timers = {t.kind: t for t in decision.sla}
    assert timers["remind"].due_at == ny(2026, 12, 7, 11)      # 2 h Friday + 2 h Monday
    assert timers["escalate"].due_at == ny(2026, 12, 9, 15)    # 2 + 8 + 8 + 6 business hours
    assert timers["reassign"].due_at == ny(2026, 12, 14, 15)   # 48: Wed 2 + Thu, Fri 16 + Mon 6
    assert {t.started_at for t in decision.sla} == {FRIDAY_3PM}
    assert {t.lead_owner_id for t in decision.sla} == {"005A"}
    assert timers["remind"].owner_id == "005A"
    assert timers["escalate"].owner_id == "005M"               # Cara's manager


def test_timers_start_at_the_later_of_mql_and_assignment(rules: Rules) -> None:
    mql_at, assigned = FRIDAY_3PM - timedelta(days=3), FRIDAY_3PM
    previous = EngineState(stage="MQL", mql_date=mql_at, owner_id="005B", assigned_at=assigned)
    decision, _ = evaluate(person(activities=hot_activities(), crm=CrmFacts(owner_id="005B"),
                                  previous=previous), rules, FRIDAY_3PM + timedelta(hours=1),
                           RoutingState(), TEAM)
    assert {t.started_at for t in decision.sla} == {assigned}
    assert decision.owner.owner_id == "005B"


def test_a_person_changing_the_owner_starts_a_new_handover(rules: Rules) -> None:
    first = routed(rules)
    moved = later(rules, first, FRIDAY_3PM + timedelta(days=2),
                  crm=CrmFacts(owner_id="005C", owner_set_by_human=True))
    assert moved.owner.owner_id == "005C"
    assert {t.started_at for t in moved.sla} == {FRIDAY_3PM + timedelta(days=2)}
    assert {t.lead_owner_id for t in moved.sla} == {"005C"}


def test_no_manager_escalates_to_the_owner_and_says_so(rules: Rules) -> None:
    no_managers = UserDirectory.of(replace(u, manager_id=None) for u in TEAM.by_id.values())
    escalate = next(t for t in routed(rules, users=no_managers).sla if t.kind == "escalate")
    assert escalate.owner_id == "005A"
    assert "Cara has no manager in Salesforce (User.ManagerId)" in escalate.message


def test_escalate_to_a_named_user(mappings_copy: Path) -> None:
    rules = with_routing(mappings_copy, "escalate_to: manager",
                         "escalate_to: user:vic.vp@example.com")
    escalate = next(t for t in routed(rules).sla if t.kind == "escalate")
    assert escalate.owner_id == "005V"
    unknown = with_routing(mappings_copy, "user:vic.vp@example.com", "user:nobody@example.com")
    fallback = next(t for t in routed(unknown).sla if t.kind == "escalate")
    assert fallback.owner_id == "005A" and "nobody@example.com" in fallback.message


@pytest.mark.parametrize("status,converted", [("Accepted", False), ("Qualified", False),
                                              ("Unqualified", False), (None, True)])
def test_timers_stop_once_the_lead_leaves_mql(rules: Rules, status: str | None,
                                              converted: bool) -> None:
    first = routed(rules)
    moved = later(rules, first, FRIDAY_3PM + timedelta(hours=1),
                  crm=CrmFacts(owner_id="005A", lead_status=status, converted=converted,
                               disqualified_reason="Timing" if status == "Unqualified" else None))
    assert moved.stage.stage != "MQL"
    assert not [t for t in moved.sla if t.kind in ("remind", "escalate", "reassign")]


def test_a_queue_owned_mql_has_no_timers(rules: Rules) -> None:
    decision = routed(rules, users=UserDirectory.of([]))     # nobody to route to
    assert decision.owner.kind == "queue"
    assert decision.sla == ()


# --- reassign ----------------------------------------------------------------------------

def test_reassign_goes_to_another_pool_member_with_the_reason(rules: Rules) -> None:
    first = routed(rules)
    due = ny(2026, 12, 14, 15)
    assert later(rules, first, due - timedelta(minutes=1)).owner.owner_id == "005A"
    moved = later(rules, first, due)
    assert moved.owner.owner_id in {"005B", "005C"}
    assert moved.owner.changed and moved.owner.rule == "north-america-smb"
    assert moved.owner.why.startswith("Reassigned from Cara: not accepted within 48 business "
                                      "hours (SLA); ")
    assert "Owner: Reassigned from Cara" in moved.reasons_text()
    assert moved.state.assigned_at == due
    fired = [t for t in moved.sla if t.started_at == FRIDAY_3PM]
    assert [(t.kind, t.due_at, t.owner_id, t.lead_owner_id) for t in fired] == \
        [("reassign", due, moved.owner.owner_id, "005A")]
    fresh = {t.kind: t for t in moved.sla if t.started_at == due}
    assert set(fresh) == {"remind", "escalate", "reassign"}
    assert fresh["remind"].owner_id == moved.owner.owner_id
    # Pure: the same inputs give the same owner and rotation.
    assert later(rules, first, due).owner.owner_id == moved.owner.owner_id


def test_after_a_reassign_the_new_owner_keeps_it_and_the_reason_stays(rules: Rules) -> None:
    first = routed(rules)
    moved = later(rules, first, ny(2026, 12, 14, 15))
    echo = later(rules, moved, ny(2026, 12, 14, 16))
    assert echo.owner.owner_id == moved.owner.owner_id and not echo.owner.changed
    assert "Reassigned from Cara" in echo.owner.why
    assert {t.started_at for t in echo.sla} == {ny(2026, 12, 14, 15)}


def test_reassign_with_nobody_else_available_goes_to_the_fallback_queue(rules: Rules) -> None:
    first = routed(rules)
    moved = later(rules, first, ny(2026, 12, 14, 15), users=away(TEAM, "005B", "005C"))
    assert (moved.owner.owner_id, moved.owner.kind) == ("Lead Review Queue", "queue")
    assert "nobody else in rule north-america-smb was available" in moved.owner.why
    assert [(t.kind, t.owner_id) for t in moved.sla] == [("reassign", None)]


def test_an_owner_a_person_chose_is_not_reassigned_unless_the_rule_allows(
        rules: Rules, mappings_copy: Path) -> None:
    chosen = CrmFacts(owner_id="005A", owner_set_by_human=True)
    first = routed(rules, crm=chosen)
    kept = later(rules, first, ny(2026, 12, 14, 15), crm=chosen)
    assert kept.owner.owner_id == "005A"
    assert [t.kind for t in kept.sla] == ["remind", "escalate"]   # no reassign step at all
    allowing = with_routing(mappings_copy, "assign: {pool: na-smb}",
                            "assign: {pool: na-smb}\n    allow_reassign: true")
    first = routed(allowing, crm=chosen)
    assert [t.kind for t in first.sla] == ["remind", "escalate", "reassign"]
    moved = later(allowing, first, ny(2026, 12, 14, 15), crm=chosen)
    assert moved.owner.owner_id in {"005B", "005C"}


def test_reassign_within_a_territory(rules: Rules) -> None:
    emea = {"email": "jo@acme.de", "title": "VP Marketing", "employees": 250,
            "industry": "Software", "country": "DE", "company": "Acme"}
    first = routed(rules, profile=emea)
    assert first.owner.rule == "emea"
    moved = later(rules, first, ny(2026, 12, 14, 15), profile=emea)
    assert {first.owner.owner_id, moved.owner.owner_id} == {"005F", "005G"}
    assert moved.owner.rule == "emea"


def test_reassign_when_the_rule_no_longer_applies_routes_afresh(rules: Rules) -> None:
    emea = {"email": "jo@acme.de", "title": "VP Marketing", "employees": 250,
            "industry": "Software", "country": "DE", "company": "Acme"}
    first = routed(rules, profile=emea)
    moved = later(rules, first, ny(2026, 12, 14, 15))      # the person moved to the US
    assert moved.owner.rule == "north-america-smb" and moved.owner.owner_id == "005A"


def test_a_person_without_crm_record_keeps_the_owner_the_engine_chose(rules: Rules) -> None:
    first = routed(rules)
    again = later(rules, first, FRIDAY_3PM + timedelta(hours=1), crm=CrmFacts())
    assert again.owner.owner_id == first.owner.owner_id and not again.owner.changed
    assert {t.started_at for t in again.sla} == {FRIDAY_3PM}


# --- the qualify window ------------------------------------------------------------------

def test_an_accepted_lead_gets_qualify_reminders_at_7_and_10_5_days(rules: Rules) -> None:
    first = routed(rules)
    accepted_at = FRIDAY_3PM + timedelta(hours=2)
    sal = later(rules, first, accepted_at, crm=CrmFacts(owner_id="005A", lead_status="Accepted"))
    assert sal.stage.stage == "SAL" and sal.state.sal_at == accepted_at
    timers = {t.kind: t for t in sal.sla}
    assert set(timers) == {"qualify", "qualify_late"}
    assert timers["qualify"].due_at == accepted_at + timedelta(days=7)
    assert timers["qualify_late"].due_at == accepted_at + timedelta(days=10, hours=12)
    assert {t.owner_id for t in sal.sla} == {"005A"}
    still = later(rules, sal, accepted_at + timedelta(days=8),
                  crm=CrmFacts(owner_id="005A", lead_status="Accepted"))
    assert still.state.sal_at == accepted_at
    assert {t.started_at for t in still.sla} == {accepted_at}


@pytest.mark.parametrize("status,reason", [("Qualified", None), ("Unqualified", "Timing"),
                                           ("Unqualified", "Competitor")])
def test_qualify_reminders_stop_at_sql_recycle_or_disqualify(rules: Rules, status: str,
                                                             reason: str | None) -> None:
    sal = later(rules, routed(rules), FRIDAY_3PM + timedelta(hours=2),
                crm=CrmFacts(owner_id="005A", lead_status="Accepted"))
    done = later(rules, sal, FRIDAY_3PM + timedelta(days=3),
                 crm=CrmFacts(owner_id="005A", lead_status=status, disqualified_reason=reason))
    assert done.stage.stage in ("SQL", "Recycled", "Disqualified")
    assert done.sla == () and done.state.sal_at is None


# --- out of office -----------------------------------------------------------------------

def test_out_of_office_owner_tasks_go_to_the_manager(rules: Rules) -> None:
    first = routed(rules)
    reminded = later(rules, first, ny(2026, 12, 7, 11), users=away(TEAM, "005A"))
    remind = next(t for t in reminded.sla if t.kind == "remind")
    assert remind.owner_id == "005M"
    assert "Cara is out of office, so this goes to Max per out_of_office: manager" in \
        remind.message
    assert remind.lead_owner_id == "005A"


def test_out_of_office_pool_gives_the_next_available_member(mappings_copy: Path) -> None:
    rules = with_routing(mappings_copy, "out_of_office: manager", "out_of_office: pool")
    first = routed(rules)
    remind = next(t for t in later(rules, first, ny(2026, 12, 7, 11),
                                   users=away(TEAM, "005A", "005B")).sla if t.kind == "remind")
    assert remind.owner_id == "005C"      # Dan, next after Cara, is away too


def test_out_of_office_with_no_stand_in_keeps_the_owner_and_says_so(rules: Rules) -> None:
    first = routed(rules)
    remind = next(t for t in later(rules, first, ny(2026, 12, 7, 11),
                                   users=away(TEAM, "005A", "005M")).sla if t.kind == "remind")
    assert remind.owner_id == "005A" and "finds nobody available" in remind.message


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(["005A", "005B", "005C"])), st.integers(0, 3))
def test_a_reassign_never_keeps_the_owner_and_stays_in_the_pool(rules: Rules,
                                                                 absent: set[str],
                                                                 turns: int) -> None:
    state = RoutingState()
    for _ in range(turns):   # earlier leads have moved the rotation on
        _, state = evaluate(person(activities=hot_activities(), person_id="x"), rules,
                            FRIDAY_3PM, state, TEAM)
    first, state = evaluate(person(activities=hot_activities()), rules, FRIDAY_3PM, state,
                            TEAM)
    moved, _ = evaluate(person(activities=hot_activities(),
                               crm=CrmFacts(owner_id=first.owner.owner_id),
                               previous=first.state),
                        rules, ny(2026, 12, 14, 15), state, away(TEAM, *absent))
    assert moved.owner.owner_id != first.owner.owner_id
    others = {"005A", "005B", "005C"} - absent - {first.owner.owner_id}
    assert moved.owner.owner_id in (others or {"Lead Review Queue"})


def test_a_task_stamps_each_moment_as_written_though_equal_moments_alternate() -> None:
    """The last stamp is remembered by identity: an equal moment of another offset (or zone,
    at a fold) gets its own text, as strftime gives it, from the first year to the last."""
    from syncagent.engine import sla

    utc = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    moments = [utc, utc.astimezone(ZoneInfo("Asia/Kolkata")), datetime(2026, 11, 25, 9, 0,
               tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59),
               datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1)]
    for _ in range(2):
        for moment in [*moments, *reversed(moments)]:
            assert sla._stamped(moment) == moment.strftime("%Y-%m-%d %H:%M UTC")
    assert sla._stamped(moments[1]) == "2026-11-25 14:30 UTC"
