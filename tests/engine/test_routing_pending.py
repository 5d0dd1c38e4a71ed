"""An owner the engine chose but the CRM does not show yet (its write waits in the outbox: push
off, the CRM down, a dry run) stands when the person is evaluated again: no second routing,
no turn of the rotation, the same sentence. Once the CRM shows any other owner, routing looks
again, as it does for an owner that is no longer available."""

from __future__ import annotations

from datetime import timedelta

from syncagent.engine import (
    CrmFacts,
    Decision,
    RoutingState,
    Rules,
    User,
    UserDirectory,
    evaluate,
)

from .conftest import NOW
from .helpers import FIT, USERS, hot_activities, person

EMEA = {**FIT, "country": "DE"}            # the EMEA territory: a rotation of 005F and 005G
INACTIVE = CrmFacts(owner_id="005Z")        # a Lead whose owner has left: it is routed


def _again(rules: Rules, first: Decision, state: RoutingState, crm: CrmFacts = INACTIVE,
           users: UserDirectory = USERS, hours: float = 1) -> tuple[Decision, RoutingState]:
    return evaluate(person(profile=EMEA, activities=hot_activities(), crm=crm,
                           previous=first.state),
                    rules, NOW + timedelta(hours=hours), state, users)


def _first(rules: Rules) -> tuple[Decision, RoutingState]:
    return evaluate(person(profile=EMEA, activities=hot_activities(), crm=INACTIVE),
                    rules, NOW, RoutingState(), USERS)


def test_an_owner_not_written_yet_stands_at_every_evaluation(rules: Rules) -> None:
    first, state = _first(rules)
    assert first.owner.owner_id in ("005F", "005G") and first.owner.changed
    decision, again = first, state
    for hours in (1, 2, 30):
        decision, again = _again(rules, decision, again, hours=hours)
        assert decision.owner.owner_id == first.owner.owner_id
        assert decision.owner.why == first.owner.why, "the same sentence: nothing to rewrite"
        assert again == state, "the rotation did not turn"
        assert decision.state.assigned_at == first.state.assigned_at
        assert decision.sla == first.sla


def test_once_written_the_owner_is_kept_as_any_owner_the_agent_set(rules: Rules) -> None:
    first, state = _first(rules)
    landed = CrmFacts(owner_id=first.owner.owner_id)
    decision, again = _again(rules, first, state, crm=landed)
    assert decision.owner.owner_id == first.owner.owner_id and again == state
    assert "already owns it" in decision.owner.why
    later, _ = _again(rules, decision, again, crm=landed)   # and it stays so
    assert later.owner.owner_id == first.owner.owner_id


def test_another_owner_on_the_crm_is_routed_afresh(rules: Rules) -> None:
    first, state = _first(rules)
    queue = CrmFacts(owner_id="00GQUEUE")     # someone moved the lead to a queue meanwhile
    decision, again = _again(rules, first, state, crm=queue)
    assert again != state, "routed again: the rotation turned"
    assert decision.owner.owner_id in ("005F", "005G")
    assert decision.owner.owner_id != first.owner.owner_id


def test_a_chosen_owner_who_left_meanwhile_is_routed_afresh(rules: Rules) -> None:
    first, state = _first(rules)
    chosen = first.owner.owner_id
    users = UserDirectory.of([u if u.id != chosen else User(u.id, u.email, u.name,
                                                             territory=u.territory,
                                                             active=False)
                              for u in USERS.by_id.values()])
    decision, _ = _again(rules, first, state, users=users)
    assert decision.owner.owner_id not in (chosen, "005Z", None)
