"""A decision's and a state's JSON copies (one function per output type, every field named)
are what a generic walk of their dataclass fields gives (tests/pipeline/plain_paths.py):
the same keys in the same order, the same values; on varied decisions (alerts, SLA timers,
MQL dates, capped and negative categories) and on a state read back from odd stored data."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from bench.engine import make_people
from syncagent.engine import Decision, EngineState, RoutingState, Rules, evaluate
from syncagent.engine.model import User, UserDirectory
from tests.pipeline import plain_paths as plain

from . import helpers
from .conftest import NOW

USERS = UserDirectory.of([
    User("005000000000001AAA", "cara.smb@example.com", "Cara", territory="EMEA",
         manager_id="005000000000004AAA"),
    User("005000000000002AAA", "dan.smb@example.com", "Dan", out_of_office=True),
    User("005000000000003AAA", "eve.smb@example.com", territory="EMEA"),
    User("005000000000004AAA", "ava.ent@example.com", "Ava \u00e9\u00e9"),
    User("005000000000005AAA", "ben.ent@example.com", active=False),
])


def varied_decisions(rules: Rules, seed: int) -> list[Decision]:
    """400 generated persons' decisions, evaluated in turn, and a hot lead of a fitting
    profile (its alert)."""
    state = RoutingState()
    out = []
    for person in make_people(400, 12, NOW, seed=seed):
        decision, state = evaluate(person, rules, NOW, state, USERS)
        out.append(decision)
    hot, _ = evaluate(helpers.person(activities=helpers.hot_activities()), rules, NOW,
                      RoutingState(), helpers.USERS)
    return [*out, hot]


@pytest.fixture(scope="module")
def decisions(rules: Rules) -> list[Decision]:
    return varied_decisions(rules, seed=11)


def _walked(decision: Decision) -> dict[str, Any]:
    data = plain._jsonable(decision)
    data["reasons_text"] = decision.reasons_text()
    return data


def test_decisions_copy_as_the_generic_walk_of_their_fields(decisions: list[Decision]) -> None:
    # the sample holds every nested output type, with values in its optional fields
    assert any(d.alerts for d in decisions) and any(d.sla for d in decisions)
    assert any(d.stage.mql_date for d in decisions) and any(d.state.sal_at for d in decisions)
    assert any(len(d.score.by_category) > 1 for d in decisions)
    for decision in decisions:
        # as text: keys in the same order, and a float is not an int
        assert json.dumps(decision.to_dict()) == json.dumps(_walked(decision))
        assert json.dumps(decision.state.to_dict()) == json.dumps(plain._jsonable(decision.state))


def test_a_state_read_back_from_odd_stored_data_copies_as_it_was_read() -> None:
    # what a stored decision may hold: text with NUL and accents, a number where a moment
    # belongs (kept as it is), a moment of another offset (kept with its offset)
    state = EngineState.from_dict({
        "stage": "Lead\x00\u00e9", "mql_date": 12, "assigned_at": "2026-11-25T10:00:00+01:00",
        "evaluated_at": None, "routed_why": "x" * 100_000, "owner_id": ""})
    data = state.to_dict()
    assert json.dumps(data) == json.dumps(plain._jsonable(state))
    assert data["mql_date"] == 12 and data["assigned_at"] == "2026-11-25T10:00:00+01:00"
    assert list(data) == list(EngineState.__dataclass_fields__)


def test_equal_moments_of_other_offsets_keep_their_own_texts(decisions: list[Decision]) -> None:
    # the last moment's text is remembered: an equal moment written with another offset is
    # another text, and must not be given the remembered one
    plus_one = NOW.astimezone(timezone(timedelta(hours=1)))
    assert plus_one == NOW
    decision = replace(decisions[0], state=replace(decisions[0].state, evaluated_at=plus_one))
    for _ in range(2):
        data = decision.to_dict()
        assert data["evaluated_at"] == NOW.isoformat() == "2026-11-25T09:00:00+00:00"
        assert data["state"]["evaluated_at"] == "2026-11-25T10:00:00+01:00"
    later = replace(decision, evaluated_at=datetime(2027, 1, 1, tzinfo=UTC))
    assert later.to_dict()["evaluated_at"] == "2027-01-01T00:00:00+00:00"


def test_a_copy_shares_no_list_or_mapping_with_the_decision(decisions: list[Decision]) -> None:
    decision = next(d for d in decisions if d.score.by_category and d.grade.reasons)
    before = json.dumps(decision.to_dict())
    data = decision.to_dict()
    data["grade"]["reasons"].append("changed")
    data["score"]["by_category"]["changed"] = 1.0
    data["score"]["reasons"].clear()
    data["score"]["contributors"].clear()
    assert json.dumps(decision.to_dict()) == before
