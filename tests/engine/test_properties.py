"""Property tests (hypothesis) for the engine's promises."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine import (
    Activity,
    CrmFacts,
    EngineState,
    RoutingState,
    Rules,
    User,
    UserDirectory,
    evaluate,
    load_rules,
)
from syncagent.engine.grading import compile_grading, grade
from syncagent.engine.model import STAGE_RANK
from syncagent.engine.rule_files import ActivityKind, GradingFile
from syncagent.engine.scoring import score

from .conftest import NOW, SHIPPED

RULES: Rules = load_rules(SHIPPED)
KINDS = list(get_args(ActivityKind))
URLS = ["https://x.com/pricing", "https://x.com/demo", "https://x.com/blog", "", "/pricing?x"]
FAST = settings(max_examples=60, deadline=None)

activities = st.lists(st.builds(
    Activity,
    kind=st.sampled_from(KINDS),
    occurred_at=st.integers(-5 * 86_400, 400 * 86_400).map(lambda s: NOW - timedelta(seconds=s)),
    details=st.fixed_dictionaries({"url": st.sampled_from(URLS)}),
), max_size=30)

profiles = st.fixed_dictionaries({
    "email": st.sampled_from(["a@northwind.io", "b@gmail.com", "c@rivalcrm.com", None]),
    "email_domain": st.sampled_from(["northwind.io", "gmail.com", "rivalcrm.com", None]),
    "title": st.sampled_from(["VP Marketing", "Student", "Head of Sales", "CTO", "", None]),
    "employees": st.one_of(st.none(), st.integers(0, 100_000)),
    "industry": st.sampled_from(["Software", "Retail", "Healthcare", None]),
    "country": st.sampled_from(["US", "GB", "DE", "BR", "JP", None]),
})

stages = st.sampled_from(list(STAGE_RANK))
crm_facts = st.builds(
    CrmFacts,
    owner_id=st.sampled_from([None, "005A", "005Z", "00GQ"]),
    owner_set_by_human=st.booleans(),
    rep_track=st.sampled_from([None, "Newsletter", "Made Up"]),
    lead_status=st.sampled_from([None, "Open - Not Contacted", "Accepted", "Qualified",
                                 "Unqualified", "Recycled"]),
    disqualified_reason=st.sampled_from([None, "Timing", "Bad Data", "No Budget"]),
    converted=st.booleans(), has_opportunity=st.booleans(), is_customer=st.booleans(),
)


@FAST
@given(activities, profiles)
def test_score_is_never_below_zero(acts: list[Activity], profile: dict[str, Any]) -> None:
    assert score(acts, profile, RULES.compiled.scoring, NOW).score >= 0


@FAST
@given(activities, profiles, st.integers(0, 2_000 * 86_400))
def test_decayed_score_never_rises_with_time_alone(acts: list[Activity],
                                                   profile: dict[str, Any],
                                                   wait: int) -> None:
    before = score(acts, profile, RULES.compiled.scoring, NOW).score
    after = score(acts, profile, RULES.compiled.scoring, NOW + timedelta(seconds=wait)).score
    assert after <= before


@FAST
@given(profiles, st.data())
def test_grade_never_falls_when_a_criterion_goes_from_mismatch_to_match(
        profile: dict[str, Any], data: st.DataObject) -> None:
    """Change one criterion's field from a mismatching to a matching value; all else equal."""
    fixes = {"employees": (3, 250), "industry": ("Retail", "Software"),
             "country": ("BR", "US"), "title": ("Chef", "VP Marketing Director")}
    field = data.draw(st.sampled_from(sorted(fixes)))
    bad, good = fixes[field]
    if field == "employees":
        profile = {**profile, "employees": data.draw(st.sampled_from([None, 250]))}
        bad, good = 3, 250  # stays in the mid-market profile; only the size criterion moves
    _, low = grade({**profile, field: bad}, RULES.compiled.grading)
    _, high = grade({**profile, field: good}, RULES.compiled.grading)
    assert high >= low


@FAST
@given(st.lists(st.tuples(st.sampled_from(["0", "+1/3", "+2/3", "+1"]),
                          st.sampled_from(["0", "-1/3", "-2/3", "-1"]), st.booleans()),
                min_size=1, max_size=8),
       st.sampled_from(["F", "D", "B", "A+"]), st.data())
def test_any_grading_never_falls_on_mismatch_to_match(criteria: list[tuple[str, str, bool]],
                                                      start: str,
                                                      data: st.DataObject) -> None:
    spec = GradingFile.model_validate({"profiles": [{"name": "p", "start": start, "criteria": [
        {"name": f"c{i}", "when": [{"field": f"c{i}", "op": "equals", "value": 1}],
         "match": up, "mismatch": down} for i, (up, down, _) in enumerate(criteria)]}]})
    grading = compile_grading(spec)
    facts = {f"c{i}": int(hit) for i, (_, _, hit) in enumerate(criteria)}
    flip = data.draw(st.sampled_from(range(len(criteria))))
    _, before = grade({**facts, f"c{flip}": 0}, grading)
    _, after = grade({**facts, f"c{flip}": 1}, grading)
    assert after >= before


@FAST
@given(profiles, activities, crm_facts, stages, st.booleans())
def test_stage_never_moves_backwards_without_a_recycle(profile: dict[str, Any],
                                                       acts: list[Activity], crm: CrmFacts,
                                                       previous_stage: str,
                                                       same_status: bool) -> None:
    previous = EngineState(stage=previous_stage,
                           seen_lead_status=crm.lead_status if same_status else "Accepted",
                           seen_disqualified_reason=crm.disqualified_reason)
    from .helpers import person

    decision, _ = evaluate(person(profile=profile, activities=acts, crm=crm,
                                  previous=previous), RULES, NOW)
    result = decision.stage
    if not (result.recycled or result.disqualified):
        assert STAGE_RANK[result.stage] >= STAGE_RANK[previous_stage]


users = UserDirectory.of([User("005A", "cara.smb@example.com"),
                          User("005B", "dan.smb@example.com", out_of_office=True),
                          User("005C", "eve.smb@example.com"),
                          User("005D", "ava.ent@example.com"),
                          User("005E", "ben.ent@example.com"),
                          User("005F", "f@x.com", territory="EMEA")])
routing_states = st.builds(
    RoutingState,
    day=st.sampled_from([None, NOW.date().isoformat(), "2000-01-01"]),
    assigned=st.dictionaries(st.sampled_from(["005A", "005C", "005D"]), st.integers(0, 30)),
    weights=st.dictionaries(st.sampled_from(["pool:na-smb", "pool:enterprise-aes"]),
                            st.dictionaries(st.sampled_from(["005A", "005C", "005D", "005E"]),
                                            st.integers(-5, 5))),
)


@FAST
@given(profiles, crm_facts, routing_states)
def test_routing_is_deterministic_given_its_state(profile: dict[str, Any], crm: CrmFacts,
                                                  state: RoutingState) -> None:
    from .helpers import hot_activities, person

    subject = person(profile=profile, activities=hot_activities(), crm=crm)
    first = evaluate(subject, RULES, NOW, state, users)
    second = evaluate(subject, RULES, NOW, state, users)
    assert first[0].owner == second[0].owner
    assert first[1] == second[1]


messy_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                         st.text(max_size=30), st.lists(st.text(max_size=5), max_size=3),
                         st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))


@FAST
@given(st.dictionaries(st.sampled_from(["email", "title", "employees", "industry", "country",
                                        "company", "state", "annual_revenue"]), messy_values),
       st.lists(st.builds(Activity, kind=st.text(max_size=12) | st.sampled_from(KINDS),
                          occurred_at=st.just(NOW),
                          details=st.dictionaries(st.sampled_from(["url", "form"]),
                                                  messy_values, max_size=2)), max_size=5),
       crm_facts)
def test_evaluate_survives_messy_remote_values(profile: dict[str, Any], acts: list[Activity],
                                               crm: CrmFacts) -> None:
    """Whatever a remote system holds, evaluation returns a decision rather than raising."""
    from .helpers import person

    decision, _ = evaluate(person(profile=profile, activities=acts, crm=crm), RULES, NOW,
                           RoutingState(), users)
    assert decision.score.score >= 0
    assert decision.reasons_text()
