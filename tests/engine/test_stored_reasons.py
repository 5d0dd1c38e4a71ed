"""A decision as the decisions table keeps it (``Decision.stored``): without its reasons text
and its SLA timers, and ``reasons_text_of`` renders from what is kept the very text
``Decision.reasons_text()`` gives (the text written to Score_Reasons__c), after the store's
JSON round trip; on the engine's varied decisions and on made-up worst parts (empty reasons,
no track, None parts, text at the limit, non-ASCII, NUL)."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from state.sanitise import clean_text, dumps
from syncagent.engine import Decision, Rules
from syncagent.engine.reasons_text import reasons_text_of

from .test_to_dict import varied_decisions

LIMIT = 32_000


@pytest.fixture(scope="module")
def decisions(rules: Rules) -> list[Decision]:
    return varied_decisions(rules, seed=23)   # other persons than test_to_dict's


def _read_back(decision: Decision) -> dict[str, Any]:
    """The stored reasons as a reader gets them: the store's JSON text, decoded."""
    return json.loads(dumps(decision.stored()))


def test_the_stored_reasons_are_the_whole_ones_less_the_text_and_the_timers(
        decisions: list[Decision]) -> None:
    assert any(d.sla for d in decisions) and any(d.alerts for d in decisions)
    for decision in decisions:
        whole = decision.to_dict()
        del whole["reasons_text"], whole["sla"]
        stored = decision.stored()
        assert "reasons_text" not in stored and "sla" not in stored
        assert json.dumps(stored) == json.dumps(whole)   # the same keys in the same order


def test_the_text_rendered_from_stored_reasons_is_the_decisions(
        decisions: list[Decision]) -> None:
    for decision in decisions:
        reasons = _read_back(decision)
        assert reasons_text_of(reasons) == decision.reasons_text()
        for limit in (1, 2, 40, 200):
            assert reasons_text_of(reasons, limit) == decision.reasons_text(limit)


def test_a_row_stored_with_its_text_reads_that_text(decisions: list[Decision]) -> None:
    old = decisions[0].to_dict()   # what a decision stored before Decision.stored held
    old["reasons_text"] = "as it was stored"
    assert reasons_text_of(json.loads(dumps(old))) == "as it was stored"
    # a shorter limit cuts the stored text as it cuts a rendered one
    assert reasons_text_of(json.loads(dumps(old)), 6) == "as it…"


# Text a state DB keeps as it is: no NUL, no lone surrogate (those are cleaned: see below).
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60)
SOME: st.SearchStrategy[Any] = st.one_of(st.none(), TEXT)   # (None where a str is typed)
REASONS = st.lists(TEXT, max_size=6).map(tuple)


@st.composite
def _worse(draw: st.DrawFn, base: Decision) -> Decision:
    """``base`` with any of its rendered parts swapped for odd ones."""
    return replace(
        base,
        grade=replace(base.grade, grade=draw(TEXT), reasons=draw(REASONS)),
        score=replace(base.score, score=draw(st.integers(-10**6, 10**6)),
                      reasons=draw(REASONS)),
        segment=replace(base.segment, segment=draw(TEXT), reason=draw(SOME)),
        stage=replace(base.stage, stage=draw(TEXT), reason=draw(SOME)),
        owner=replace(base.owner, why=draw(SOME)),
        track=replace(base.track, track=draw(SOME), reason=draw(SOME)))


@pytest.fixture(scope="module")
def base(decisions: list[Decision]) -> Decision:
    return decisions[-1]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), limit=st.integers(1, 400))
def test_odd_parts_render_the_same_from_the_stored_reasons(base: Decision, data: st.DataObject,
                                                           limit: int) -> None:
    decision = data.draw(_worse(base))
    reasons = _read_back(decision)
    assert reasons_text_of(reasons) == decision.reasons_text()
    assert reasons_text_of(reasons, limit) == decision.reasons_text(limit)


def _worst_cases(base: Decision) -> list[Decision]:
    empty = replace(base, grade=replace(base.grade, reasons=()),
                    score=replace(base.score, score=0, reasons=()))
    no_track = replace(base, track=replace(base.track, track=None, hubspot_list=None,
                                           nurture_track_value=None, reason=""))
    nones = replace(base, segment=replace(base.segment, reason=None),   # type: ignore[arg-type]
                    stage=replace(base.stage, reason=None),             # type: ignore[arg-type]
                    owner=replace(base.owner, why=None),                # type: ignore[arg-type]
                    track=replace(base.track, track=None, reason=None))  # type: ignore[arg-type]
    foreign = replace(base, owner=replace(base.owner, why="Zuständig: Ava éé 山田 \u202eRTL 🙂"),
                      grade=replace(base.grade, reasons=("日本語", "ß", "\n", "")))
    return [empty, no_track, nones, foreign]


def _of_length(base: Decision, length: int) -> Decision:
    """``base`` with an owner sentence that makes its text ``length`` characters long."""
    short = replace(base, owner=replace(base.owner, why=""))
    return replace(base, owner=replace(base.owner,
                                       why="é" * (length - len(short.reasons_text(10**9)))))


def test_the_worst_parts_render_the_same(base: Decision) -> None:
    long = [_of_length(base, LIMIT + delta) for delta in (-1, 0, 1, 2, 5_000)]
    assert [len(d.reasons_text(10**9)) for d in long] == [LIMIT - 1, LIMIT, LIMIT + 1,
                                                           LIMIT + 2, LIMIT + 5_000]
    for decision in [*_worst_cases(base), *long]:
        reasons = _read_back(decision)
        assert reasons_text_of(reasons) == decision.reasons_text()
        assert len(reasons_text_of(reasons)) <= LIMIT
    assert reasons_text_of(_read_back(_worst_cases(base)[2])).endswith("Track -: None")


def test_text_a_database_refuses_reads_back_cleaned(base: Decision) -> None:
    # NUL and lone surrogates never reach a state DB (state/sanitise): the text read back is
    # the decision's, cleaned as its stored copy was
    dirty = replace(base, segment=replace(base.segment, reason="a\x00b \ud800 c"))
    assert reasons_text_of(_read_back(dirty)) == clean_text(dirty.reasons_text())
