"""Named operators: what each one matches, and what the loader refuses."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from syncagent.engine.operators import (
    MAX_SUBJECT_LENGTH,
    Condition,
    compile_all,
    compile_condition,
    regex_problem,
)


def matches(op: str, value: Any, actual: Any, field: str = "f") -> bool:
    return compile_condition(Condition(field=field, op=op, value=value))({field: actual})


@pytest.mark.parametrize(("op", "value", "actual", "expected"), [
    ("equals", "Software", "software", True),
    ("equals", "Software", "Retail", False),
    ("equals", 5, 5, True),
    ("in", ["US", "CA"], "ca", True),
    ("in", ["US", "CA"], "GB", False),
    ("contains_any", ["market", "growth"], "VP Marketing", True),
    ("contains_any", ["market"], "Engineer", False),
    ("starts_with", "vp", "VP Sales", True),
    ("starts_with", ["head", "chief"], "Chief of Staff", True),
    ("starts_with", "vp", "SVP Sales", False),
    ("regex", r"\bc[emt]o\b", "Acting CTO", True),
    ("regex", r"\bc[emt]o\b", "Cooper", False),
    ("between", [51, 200], 51, True),
    ("between", [51, 200], "200", True),
    ("between", [51, 200], 201, False),
    ("gt", 100, 101, True),
    ("gt", 100, 100, False),
    ("gte", 100, 100, True),
    ("lt", 10, 9.5, True),
    ("lte", 10, 10, True),
    ("lte", 10, "eleven", False),
    ("is_blank", True, "", True),
    ("is_blank", True, "  ", True),
    ("is_blank", None, None, True),
    ("is_blank", False, "x", True),
    ("is_blank", True, "x", False),
])
def test_operator_semantics(op: str, value: Any, actual: Any, expected: bool) -> None:
    assert matches(op, value, actual) is expected


@pytest.mark.parametrize("op", ["equals", "in", "contains_any", "starts_with", "regex",
                                "between", "gt", "gte", "lt", "lte"])
def test_missing_field_never_matches_a_comparison(op: str) -> None:
    value: Any = {"equals": "x", "in": ["x"], "contains_any": ["x"], "starts_with": "x",
                  "regex": "x", "between": [1, 2]}.get(op, 1)
    assert compile_condition(Condition(field="f", op=op, value=value))({}) is False


def test_grade_comparisons_use_the_grade_order() -> None:
    at_least_b = compile_condition(Condition(field="grade", op="gte", value="B"))
    assert at_least_b({"grade": "B+", "grade_rank": 9})
    assert not at_least_b({"grade": "C+", "grade_rank": 6})


def test_empty_condition_list_always_holds_and_all_must_hold() -> None:
    assert compile_all([])({})
    both = compile_all([Condition(field="a", op="equals", value=1),
                        Condition(field="b", op="equals", value=2)])
    assert both({"a": 1, "b": 2})
    assert not both({"a": 1, "b": 3})


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=pricing)", r"(?<!x)y", r"(?!a)b", "(a"])
def test_patterns_re2_cannot_run_in_linear_time_are_refused(pattern: str) -> None:
    problem = regex_problem(pattern)
    assert problem is not None and "RE2" in problem


@pytest.mark.parametrize("pattern", ["(.*a){12}$", "(a+)+$", "(x|xy)*z", "([a-z]+)*$"])
def test_backtracking_patterns_finish_at_once_on_the_linear_engine(pattern: str) -> None:
    """(.*a){12}$ on a 30-character title took 15.5 s with Python's re; RE2 cannot backtrack.
    The match runs in a child process (a backtracking match holds the GIL, so a thread could
    not be timed out); 20 s is a hang detector with a wide margin, not a performance figure."""
    assert regex_problem(pattern) is None
    code = ("import sys; from syncagent.engine.operators import Condition, compile_condition; "
            "p = compile_condition(Condition(field='t', op='regex', value=sys.argv[1])); "
            "print([p({'t': t}) for t in ('a' * 34 + '!', 'x' * 34 + 'y', 'A' * 30 + 'b')])")
    try:
        done = subprocess.run([sys.executable, "-c", code, pattern], capture_output=True,
                              text=True, timeout=20, check=True)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{pattern} still matching a 35-character title after 20 s")
    assert done.stdout.startswith("[")


def test_regex_survives_text_with_lone_surrogates() -> None:
    predicate = compile_condition(Condition(field="title", op="regex", value="^vp"))
    assert predicate({"title": "VP \ud800 sales"})
    assert not predicate({"title": "\udfff"})


@pytest.mark.parametrize("pattern", [r"/(pricing|demo)(/|$)", r"\bvp\b", r"^[a-z]+@x\.com$"])
def test_ordinary_regexes_are_accepted(pattern: str) -> None:
    assert regex_problem(pattern) is None


def test_regex_only_sees_a_bounded_prefix_of_long_text() -> None:
    text = "a" * (MAX_SUBJECT_LENGTH + 10) + "needle"
    assert not matches("regex", "needle", text)


@pytest.mark.parametrize(("op", "value"), [
    ("between", [10, 1]), ("between", [1]), ("in", []), ("in", "x"), ("gt", "ten"),
    ("regex", "(unclosed"), ("equals", ["a"]), ("is_blank", "yes"),
])
def test_values_that_do_not_fit_the_operator_are_refused(op: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Condition(field="f", op=op, value=value)


def test_unknown_operator_is_refused() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate({"field": "f", "op": "eval", "value": "1"})
