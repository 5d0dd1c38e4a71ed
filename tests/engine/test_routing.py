"""Routing: first match wins; account owner, territory, pools with caps, queue fallback."""

from __future__ import annotations

from pathlib import Path

from syncagent.engine import (
    AccountContext,
    CrmFacts,
    EngineState,
    RoutingState,
    Rules,
    User,
    UserDirectory,
    evaluate,
    load_rules,
)

from .conftest import NOW
from .helpers import FIT, USERS, hot_activities, person


def route(rules: Rules, users: UserDirectory = USERS, state: RoutingState | None = None,
          **kwargs: object) -> tuple[str | None, str, RoutingState]:
    kwargs.setdefault("activities", hot_activities())
    decision, new_state = evaluate(person(**kwargs), rules, NOW,  # type: ignore[arg-type]
                                   state or RoutingState(), users)
    return decision.owner.owner_id, decision.owner.why, new_state


def test_existing_account_owner_wins(rules: Rules) -> None:
    owner, why, _ = route(rules, account=AccountContext("001X", "005D", "northwind.io",
                                                         "Northwind"))
    assert owner == "005D"
    assert "owner of the existing account Northwind" in why


def test_territory_rotation(rules: Rules) -> None:
    owner, why, _ = route(rules, profile={**FIT, "country": "DE"})
    assert owner in ("005F", "005G")
    assert "territory EMEA" in why


def test_segment_by_employees_goes_to_the_enterprise_pool(rules: Rules) -> None:
    owner, _, _ = route(rules, profile={**FIT, "employees": 5000, "title": "CMO"})
    assert owner in ("005D", "005E")


def test_weighted_round_robin_follows_the_weights(rules: Rules) -> None:
    state = RoutingState()
    owners = []
    for i in range(6):
        owner, _, state = route(rules, state=state, person_id=f"p{i}",
                                profile={**FIT, "employees": 5000, "title": "CMO"})
        owners.append(owner)
    assert owners.count("005D") == 4 and owners.count("005E") == 2   # weights 2:1


def test_out_of_office_and_inactive_reps_are_skipped(rules: Rules) -> None:
    users = UserDirectory.of([User("005A", "cara.smb@example.com", "Cara", out_of_office=True),
                              User("005B", "dan.smb@example.com", "Dan", active=False),
                              User("005C", "eve.smb@example.com", "Eve")])
    state = RoutingState()
    for i in range(3):
        owner, why, state = route(rules, users=users, state=state, person_id=f"p{i}")
        assert owner == "005C"
    assert "skipped Cara (unavailable), Dan (unavailable)" in why


def test_daily_caps_are_respected_then_the_queue_takes_over(rules: Rules) -> None:
    users = UserDirectory.of([User("005A", "cara.smb@example.com", "Cara", assigned_today=25),
                              User("005B", "dan.smb@example.com", "Dan", assigned_today=25),
                              User("005C", "eve.smb@example.com", "Eve", assigned_today=24)])
    owner, _, state = route(rules, users=users)
    assert owner == "005C"
    owner, why, _ = route(rules, users=users, state=state, person_id="p2")
    assert owner == "Lead Review Queue"
    assert "at daily cap 25" in why


def test_daily_counts_reset_on_a_new_day(rules: Rules) -> None:
    state = RoutingState(day="2000-01-01", assigned={"005A": 99})
    _, _, new_state = route(rules, state=state)
    assert new_state.day == NOW.date().isoformat()
    assert new_state.assigned.get("005A", 0) <= 1


def test_human_owner_is_kept_unless_a_rule_allows_reassigning(rules: Rules) -> None:
    owner, why, _ = route(rules, crm=CrmFacts(owner_id="005E", owner_set_by_human=True))
    assert owner == "005E"
    assert "a person assigned this lead" in why


def test_existing_agent_owner_is_sticky_but_inactive_owner_is_replaced(rules: Rules) -> None:
    owner, why, _ = route(rules, crm=CrmFacts(owner_id="005A"),
                          previous=EngineState(stage="MQL", owner_id="005A"))
    assert owner == "005A" and "already owns it" in why
    owner, _, _ = route(rules, crm=CrmFacts(owner_id="005Z"))
    assert owner not in ("005Z", None)


def test_an_mql_the_integration_user_owns_is_routed_not_kept(rules: Rules) -> None:
    # "005D" is an active user; as the integration user it is nobody's choice.
    kept, _, _ = route(rules, crm=CrmFacts(owner_id="005D"))
    owner, why, _ = route(rules, crm=CrmFacts(owner_id="005D", owner_is_machine=True),
                          profile={**FIT, "country": "DE"})
    assert kept == "005D"
    assert owner in ("005F", "005G") and "territory EMEA" in why


def test_below_the_routing_stage_nothing_is_routed(rules: Rules) -> None:
    owner, why, _ = route(rules, activities=[], crm=CrmFacts(owner_id="00GQUEUE"))
    assert owner == "00GQUEUE"
    assert "Not routed yet" in why


def test_no_rule_or_no_one_available_falls_back_to_a_queue(rules: Rules) -> None:
    owner, why, _ = route(rules, users=UserDirectory(), profile={**FIT, "country": "GB"})
    assert owner == "Lead Review Queue"
    assert "nobody in territory EMEA was available" in why


def test_routing_is_deterministic_given_its_state(rules: Rules) -> None:
    state = RoutingState(day=NOW.date().isoformat(), assigned={"005A": 3},
                         weights={"pool:na-smb": {"005A": -1, "005C": 1}})
    assert route(rules, state=state) == route(rules, state=state)


def test_routing_state_round_trips_through_json(rules: Rules) -> None:
    _, _, state = route(rules)
    assert RoutingState.from_dict(state.to_dict()) == state


def test_a_rule_that_allows_reassigning_replaces_a_human_owner(
        rules: Rules, mappings_copy: Path) -> None:
    routing = (mappings_copy / "routing.yaml").read_text().replace(
        "    assign: {pool: na-smb}\n", "    assign: {pool: na-smb}\n    allow_reassign: true\n")
    (mappings_copy / "routing.yaml").write_text(routing)
    reassigning = load_rules(mappings_copy)
    crm = CrmFacts(owner_id="005E", owner_set_by_human=True)
    owner, why, _ = route(reassigning, crm=crm)
    assert owner in ("005A", "005B", "005C")
    assert "north-america-smb" in why
    # with the shipped rules the same person keeps the owner and the rotation does not move
    state = RoutingState()
    owner, why, new_state = route(rules, crm=crm, state=state)
    assert owner == "005E" and "does not allow reassigning" in why
    assert new_state is state


def test_a_territory_rotates_through_its_users_in_id_order_skipping_the_unavailable(
        rules: Rules) -> None:
    """The territory's users are looked up once per directory: the rotation still goes
    through them in id order, skips the away and inactive, and a directory without them
    (or without users) falls back to the queue."""
    users = UserDirectory.of([
        User("005Z", "zed@example.com", territory="EMEA"),
        User("005G", "gus@example.com", territory="EMEA", out_of_office=True),
        User("005F", "fay@example.com", territory="EMEA"),
        User("005A", "ann@example.com", territory="EMEA", active=False),
        User("005N", "ned@example.com", territory=None),
        User("005\u00e9\x00", "odd@example.com", territory="EMEA\x00"),
    ])
    state = RoutingState()
    owners = []
    for _ in range(4):
        owner, _, state = route(rules, users=users, state=state,
                                profile={**FIT, "country": "DE"})
        owners.append(owner)
    assert owners == ["005F", "005Z", "005F", "005Z"]
    assert [u.id for u in users.in_territory("EMEA")] == ["005A", "005F", "005G", "005Z"]
    assert users.in_territory("EMEA") is users.in_territory("EMEA")
    assert users.in_territory("APAC") == ()
    assert users == UserDirectory.of(users.by_id.values())   # what it remembers is no part
    for empty in (UserDirectory(), UserDirectory.of([User("005N", territory=None)])):
        owner, why, _ = route(rules, users=empty, profile={**FIT, "country": "DE"})
        assert "nobody in territory EMEA was available" in why
