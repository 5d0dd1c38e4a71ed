"""Scoring by time: the smooth recency form, recency beyond the shipped cap, and early bands
(points that depend on how soon after the person's creation an activity happened)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncagent.engine import MappingError, evaluate, load_rules
from syncagent.engine.rule_files import ScoringFile
from syncagent.engine.scoring import CompiledScoring, compile_scoring, score

from .conftest import NOW
from .helpers import act, person

OPPORTUNITY_EARLY: dict[str, Any] = {
    "name": "opportunity-created", "kind": "opportunity_created", "points": 50,
    "category": "sales", "early": [{"within_days_of_creation": 14, "points": 80},
                                   {"within_days_of_creation": 60, "points": 65}]}


def _scoring(activities: list[dict[str, Any]] | None = None,
             recency: dict[str, Any] | None = None, recency_cap: float | None = 40,
             decay: dict[str, Any] | None = None) -> CompiledScoring:
    spec = ScoringFile.model_validate({
        "categories": [{"name": "sales", "cap": 500}, {"name": "web"},
                       {"name": "recency", "cap": recency_cap}, {"name": "penalties"}],
        "decay": decay or {"kind": "none"},
        "activities": activities or [
            OPPORTUNITY_EARLY,
            {"name": "page-view", "kind": "page_view", "points": 1, "category": "web"},
            {"name": "unsubscribe", "kind": "unsubscribe", "points": -50,
             "category": "penalties"}],
        "recency": recency})
    return compile_scoring(spec)


# --- early bands ------------------------------------------------------------------------

def test_unknown_creation_time_earns_the_rules_own_points() -> None:
    result = score([act("opportunity_created", 1)], {}, _scoring(), NOW, created=None)
    assert result.by_category["sales"] == 50
    assert result.reasons == ("opportunity-created: +50",)


def test_activity_before_the_creation_counts_in_the_first_band() -> None:
    # A visit tracked before the lead existed is as early as activity gets.
    created = NOW
    result = score([act("opportunity_created", 3)], {}, _scoring(), NOW, created=created)
    assert result.by_category["sales"] == 80


@pytest.mark.parametrize(("days_after_creation", "points", "rule"), [
    (0, 80, "opportunity-created within 14 days of creation"),
    (14, 80, "opportunity-created within 14 days of creation"),   # the limit is inclusive
    (14.01, 65, "opportunity-created within 60 days of creation"),
    (60, 65, "opportunity-created within 60 days of creation"),
    (61, 50, "opportunity-created"),
])
def test_the_first_band_the_activity_falls_in_counts(days_after_creation: float, points: int,
                                                     rule: str) -> None:
    created = NOW - timedelta(days=100)
    activity = act("opportunity_created", 100 - days_after_creation)
    result = score([activity], {}, _scoring(), NOW, created=created)
    assert result.by_category["sales"] == points
    assert f"{rule}: +{points}" in result.reasons


def test_early_and_late_activities_of_one_rule_are_counted_apart() -> None:
    created = NOW - timedelta(days=90)
    acts = [act("opportunity_created", 89), act("opportunity_created", 88),
            act("opportunity_created", 1)]
    result = score(acts, {}, _scoring(), NOW, created=created)
    assert result.by_category["sales"] == 80 * 2 + 50
    assert "opportunity-created within 14 days of creation x2: +160" in result.reasons
    assert "opportunity-created: +50" in result.reasons


def test_early_points_decay_like_the_rules_own() -> None:
    sc = _scoring(decay={"kind": "half_life", "half_life_days": 30})
    created = NOW - timedelta(days=31)
    result = score([act("opportunity_created", 30)], {}, sc, NOW, created=created)
    assert result.by_category["sales"] == pytest.approx(40, abs=0.01)


def test_evaluate_reads_the_persons_creation_time(mappings_copy: Path) -> None:
    def early(doc: dict[str, Any]) -> None:
        rule = next(r for r in doc["activities"] if r["name"] == "opportunity-created")
        rule["early"] = [{"within_days_of_creation": 14, "points": 80}]
    _install_scoring(mappings_copy, early)
    rules = load_rules(mappings_copy)
    someone = person(activities=[act("opportunity_created", 1)])
    known, _ = evaluate(replace(someone, created_at=NOW - timedelta(days=5)), rules, NOW)
    unknown, _ = evaluate(someone, rules, NOW)
    # a day's decay at the shipped 30-day half-life: 80 -> 78.2, 50 -> 48.9
    assert "opportunity-created within 14 days of creation: +78.2" in known.score.reasons
    assert "opportunity-created: +48.9" in unknown.score.reasons


# --- recency ----------------------------------------------------------------------------

def test_no_scoring_activity_gives_no_recency() -> None:
    sc = _scoring(recency={"category": "recency", "max_points": 30, "half_life_days": 7})
    result = score([act("unsubscribe", 0)], {}, sc, NOW)
    assert "recency" not in result.by_category
    assert not any(r.startswith("recency") for r in result.reasons)


def test_smooth_recency_halves_every_half_life() -> None:
    sc = _scoring(recency={"category": "recency", "max_points": 30, "half_life_days": 7})
    today = score([act("page_view", 0)], {}, sc, NOW)
    week = score([act("page_view", 7)], {}, sc, NOW)
    assert today.by_category["recency"] == 30
    assert week.by_category["recency"] == pytest.approx(15)
    assert "recency (last activity today): +30" in today.reasons
    assert "recency (last activity 7 days ago): +15" in week.reasons


def test_recency_counts_the_newest_activity_only() -> None:
    sc = _scoring(recency={"category": "recency", "max_points": 30, "half_life_days": 7})
    result = score([act("page_view", 14), act("page_view", 2), act("page_view", 40)], {}, sc,
                   NOW)
    assert result.by_category["recency"] == pytest.approx(30 * 0.5 ** (2 / 7), abs=0.01)
    assert "recency (last activity 2 days ago): +24.6" in result.reasons


def test_recency_bands_beyond_fifteen_points_are_capped_by_their_category() -> None:
    bands = {"category": "recency", "bands": [{"within_days": 2, "points": 25},
                                              {"within_days": 14, "points": 10}]}
    wide = score([act("page_view", 1)], {}, _scoring(recency=bands, recency_cap=40), NOW)
    assert wide.by_category["recency"] == 25
    assert "recency (last activity 1 day ago): +25" in wide.reasons


def test_reasons_read_as_points_per_rule() -> None:
    sc = _scoring(recency={"category": "recency", "max_points": 30, "half_life_days": 7})
    result = score([act("opportunity_created", 3), act("page_view", 2), act("page_view", 1)],
                   {}, sc, NOW, created=NOW - timedelta(days=10))
    for reason in result.reasons:
        assert re.fullmatch(r"[\w .()-]+( x\d+)?: [+-]\d+(\.\d)?", reason), reason


# --- the files --------------------------------------------------------------------------

def _install_scoring(mappings: Path, edit: Any) -> Path:
    path = mappings / "scoring.yaml"
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _only_problem(mappings: Path) -> str:
    with pytest.raises(MappingError) as caught:
        load_rules(mappings)
    assert len(caught.value.problems) == 1, caught.value.problems
    return str(caught.value.problems[0])


def test_recency_with_both_forms_is_refused(mappings_copy: Path) -> None:
    def both(doc: dict[str, Any]) -> None:
        doc["recency"]["max_points"] = 30
        doc["recency"]["half_life_days"] = 7
    _install_scoring(mappings_copy, both)
    assert "either bands or max_points" in _only_problem(mappings_copy)


def test_smooth_recency_without_half_life_is_refused(mappings_copy: Path) -> None:
    def half(doc: dict[str, Any]) -> None:
        doc["recency"] = {"category": "recency", "max_points": 15}
    _install_scoring(mappings_copy, half)
    assert "max_points with half_life_days" in _only_problem(mappings_copy)


def test_smooth_recency_above_its_cap_is_refused(mappings_copy: Path) -> None:
    def over(doc: dict[str, Any]) -> None:
        doc["recency"] = {"category": "recency", "max_points": 30, "half_life_days": 7}
    path = _install_scoring(mappings_copy, over)
    message = _only_problem(mappings_copy)
    line = next(i for i, row in enumerate(path.read_text().splitlines(), 1)
                if row.strip().startswith("max_points"))
    assert message.startswith(f"{path}:{line}: ")
    assert "capped at 15" in message


def test_shipped_rules_load_with_a_smooth_recency_under_a_wider_cap(mappings_copy: Path
                                                                     ) -> None:
    def wide(doc: dict[str, Any]) -> None:
        doc["recency"] = {"category": "recency", "max_points": 30, "half_life_days": 7}
        next(c for c in doc["categories"] if c["name"] == "recency")["cap"] = 30
    _install_scoring(mappings_copy, wide)
    sc = load_rules(mappings_copy).compiled.scoring
    assert score([act("page_view", 0)], {}, sc, NOW).by_category["recency"] == 30
