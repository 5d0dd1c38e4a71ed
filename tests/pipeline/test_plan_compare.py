"""Planning's comparison of wanted and held values, the change each write carries, and the
handoff's stamps: the shortcuts `_changes` takes for speed give `same_value`'s answer on every
kind of value, each row carries `carried_change` of its system as made, whatever row it is,
and a kept stamp is its instant's."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from connectors.registry import profile_of
from state.store import MirrorRow
from syncagent.engine import PersonInput, Rules, evaluate, load_rules
from syncagent.engine.model import CrmFacts
from syncagent.pipeline.handoff import _stamp, timer_key
from syncagent.pipeline.plan import PersonPlan, PlanContext, _changes, carried_change, plan_person
from syncagent.pipeline.records import same_value

T0 = datetime(2026, 11, 20, tzinfo=UTC)
MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NAN = float("nan")

# (wanted, held): the worst first (blanks, NaN, bools against numbers, numbers that float()
# rounds together, NUL and unicode text, a huge text), then the common cases.
PAIRS: list[tuple[Any, Any]] = [
    (None, None), ("", None), (None, ""), ("", ""), (0, None), (False, None), (0.0, None),
    (NAN, NAN), (NAN, None), (True, 1), (1, True), (True, "true"), (False, 0), (True, True),
    (2**60, 2**60 + 1), (2**60 + 1, 2**60 + 1), (10**30, 10**30 + 1), (1.0, 1), (1, 1.0),
    (1.0, 1.0000000000001), (0.1 + 0.2, 0.3), (63, "63"), (63, "63.0"), (63.5, "x"),
    ("a\x00b", "a\x00b"), ("a\x00b", "a\x00c"), ("é", "e\u0301"), ("\ud800", "\ud800"),
    ("x" * 100_000, "x" * 100_000), ("x" * 100_000, "x" * 99_999 + "y"), ("CTO", "CTO"),
    ("CTO", "cto"), ("", "CTO"), ("CTO", ""), (5, 5), (5, 6), (5.5, 5.5), (5.5, 6.5),
    (T0, "2026-11-20T00:00:00Z"), (T0, "2026-11-20T00:00:05Z"), (T0, None), ("1", 1),
]


@pytest.mark.parametrize(("wanted", "held"), PAIRS)
@pytest.mark.parametrize("system", ["salesforce", "hubspot"])
def test_a_value_is_written_exactly_when_same_value_says_it_differs(
        wanted: Any, held: Any, system: str) -> None:
    profile = profile_of(system)
    assert profile is not None
    record = MirrorRow(system, "Lead" if system == "salesforce" else "contacts", "1",
                       {"F": held}, T0)
    changes = _changes({"F": wanted}, record, {}, profile)
    assert ("F" in changes) is not same_value(wanted, held)
    if "F" in changes:
        assert repr(changes["F"]) == repr(profile.wire(wanted))   # (NaN is not == NaN)


@pytest.mark.parametrize(("wanted", "held"), PAIRS[:12])
def test_a_field_not_read_is_compared_with_what_the_agent_last_wrote(wanted: Any,
                                                                    held: Any) -> None:
    profile = profile_of("salesforce")
    assert profile is not None
    record = MirrorRow("salesforce", "Lead", "1", {}, T0)
    written = {"F": {"value": held, "at": "x"}}
    changes = _changes({"F": wanted}, record, written, profile)
    assert ("F" in changes) is not same_value(wanted, held)


def test_a_hand_set_owner_is_kept_and_an_untouched_one_is_written() -> None:
    profile = profile_of("salesforce")
    assert profile is not None
    record = MirrorRow("salesforce", "Lead", "1", {"OwnerId": "005REP"}, T0)
    ours = {"OwnerId": {"value": "005AGENT", "at": "x"}}
    assert _changes({"OwnerId": "005NEW"}, record, ours, profile) == {}
    assert _changes({"OwnerId": "005NEW"}, record, {}, profile) == {"OwnerId": "005NEW"}


@pytest.fixture(scope="module")
def rules() -> Rules:
    return load_rules(MAPPINGS)


def _mql(rules: Rules) -> tuple[Any, dict[str, Any]]:
    from syncagent.engine import Activity

    profile = {"email": "cto@bigco.com", "title": "Chief Technology Officer",
               "employees": 2500, "industry": "Software", "country": "US",
               "annual_revenue": 50_000_000, "company": "BigCo", "last_name": "Ng"}
    acts = tuple(Activity("form_submission", T0 - timedelta(days=d), {"form": "demo"}, f"f{d}")
                 for d in range(4))
    decision, _ = evaluate(PersonInput("7", profile, acts, CrmFacts()), rules, T0)
    assert decision.stage.stage == "MQL"
    return decision, profile


@pytest.mark.parametrize("before", [None, T0 - timedelta(days=1), T0 + timedelta(days=1)])
def test_every_row_carries_the_change_of_its_system_updates_and_creates_alike(
        rules: Rules, before: datetime | None) -> None:
    """A HubSpot-only MQL: the contact's update and the Salesforce create each carry
    `carried_change` of their own system (None at a first evaluation, or when nothing
    changed since the last one)."""
    decision, profile = _mql(rules)
    contact = MirrorRow("hubspot", "contacts", "501", {"email": "cto@bigco.com"},
                        T0 - timedelta(hours=3))
    person = PersonPlan(7, decision, profile, [contact], {}, "cto@bigco.com",
                        evaluated_before=before)
    rows = plan_person(person, PlanContext(rules.compiled.fields, {}))
    assert {r.system for r in rows} == {"hubspot", "salesforce"}
    for row in rows:
        assert row.changed_at == carried_change(person, row.system)
    assert any(r.changed_at is not None for r in rows) is (before == T0 - timedelta(days=1))
    again = plan_person(replace(person, evaluated_before=None),
                        PlanContext(rules.compiled.fields, {}))
    assert [replace(r, changed_at=None) for r in rows] == again


def test_a_stamp_is_the_instant_whatever_the_zone_it_is_given_in() -> None:
    here = T0.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert _stamp(here) == _stamp(T0) == "20261120T000000000000Z"
    assert _stamp(T0 + timedelta(microseconds=1)) == "20261120T000000000001Z"
    naive = datetime(2026, 11, 20, 1, 2, 3)
    assert _stamp(naive) == f"{naive.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def test_a_timer_key_names_its_start_to_the_second_in_utc() -> None:
    here = T0.astimezone(timezone(timedelta(hours=-3)))
    assert timer_key(7, "remind", here) == timer_key(7, "remind", T0) == \
        "sla:7:remind:20261120T000000Z"
    assert timer_key(8, "escalate", T0 + timedelta(seconds=1, microseconds=5)) == \
        "sla:8:escalate:20261120T000001Z"
