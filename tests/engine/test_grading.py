"""Grading: start at D, thirds of a letter per criterion, profiles chosen by rule."""

from __future__ import annotations

from syncagent.engine import Rules
from syncagent.engine.grading import compile_grading, grade, pick_persona
from syncagent.engine.rule_files import GradingFile

from .helpers import FIT, POOR_FIT


def test_a_strong_fit_grades_high_with_each_moving_criterion_named(rules: Rules) -> None:
    result, _ = grade({**FIT, "email_domain": "northwind.io"}, rules.compiled.grading)
    assert result.grade == "A"
    assert result.profile == "mid-market"
    assert any(r.startswith("company-size matches") for r in result.reasons)
    assert any(r.startswith("industry matches") for r in result.reasons)


def test_a_poor_fit_grades_low(rules: Rules) -> None:
    result, _ = grade(POOR_FIT, rules.compiled.grading)
    assert result.grade in ("F", "D-")
    assert any("does not match" in r for r in result.reasons)


def test_profile_is_chosen_by_rule(rules: Rules) -> None:
    result, _ = grade({**FIT, "employees": 5000}, rules.compiled.grading)
    assert result.profile == "enterprise"


def test_blank_fields_do_not_count_as_mismatches(rules: Rules) -> None:
    result, _ = grade({"title": "VP Marketing"}, rules.compiled.grading)
    assert not any("company-size" in r for r in result.reasons)


def _one_criterion(match: str, mismatch: str, blank: str = "ignore") -> GradingFile:
    return GradingFile.model_validate({"profiles": [{"name": "p", "criteria": [{
        "name": "size", "when": [{"field": "employees", "op": "gte", "value": 50}],
        "match": match, "mismatch": mismatch, "blank": blank}]}]})


def test_steps_are_thirds_of_a_letter_from_d() -> None:
    grading = compile_grading(_one_criterion("+2/3", "-1/3"))
    assert grade({"employees": 60}, grading)[0].grade == "C-"
    assert grade({"employees": 10}, grading)[0].grade == "D-"
    whole = compile_grading(_one_criterion("+1", "-1"))
    assert grade({"employees": 60}, whole)[0].grade == "C"
    assert grade({"employees": 10}, whole)[0].grade == "F"


def test_blank_can_be_configured_as_a_mismatch() -> None:
    grading = compile_grading(_one_criterion("+1", "-1", blank="mismatch"))
    assert grade({}, grading)[0].grade == "F"


def test_grade_is_clamped_to_a_plus() -> None:
    many = GradingFile.model_validate({"profiles": [{"name": "p", "start": "A", "criteria": [
        {"name": f"c{i}", "when": [{"field": "x", "op": "is_blank", "value": False}],
         "match": "+1"} for i in range(3)]}]})
    assert grade({"x": 1}, compile_grading(many))[0].grade == "A+"


def test_persona_is_the_first_that_matches(rules: Rules) -> None:
    assert pick_persona({"title": "VP Marketing"}, rules.compiled.grading) == "marketing-leader"
    assert pick_persona({"title": "Head of RevOps"}, rules.compiled.grading) == "operations"
    assert pick_persona({"title": "Chef"}, rules.compiled.grading) is None
