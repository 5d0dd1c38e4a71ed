"""Named condition operators: the only way admin YAML can test a value. Never eval.

A condition is ``{field, op, value}``. At load time each is validated and compiled into a
small closure, so evaluation is a dict lookup plus one comparison.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, model_validator

Operator = Literal["equals", "in", "contains_any", "starts_with", "regex", "between",
                   "gt", "gte", "lt", "lte", "is_blank"]

Predicate = Callable[[Mapping[str, Any]], bool]

# Regexes run on admin-chosen patterns against remote data. RE2 matches in time linear in the
# text, whatever the pattern, so no pattern can hang a cycle; patterns RE2 cannot run in
# linear time (back-references, look-around) are refused at load time. The caps bound memory.
MAX_PATTERN_LENGTH = 300
MAX_SUBJECT_LENGTH = 2_000


def _re2_options(*, ignore_case: bool) -> re2.Options:
    options = re2.Options()
    options.case_sensitive = not ignore_case
    options.log_errors = False  # the refusal is reported as a mapping error, not on stderr
    options.max_mem = 8 << 20   # a pattern whose program outgrows this fails to compile
    return options


GRADES: tuple[str, ...] = ("F", "D-", "D", "D+", "C-", "C", "C+", "B-", "B", "B+",
                           "A-", "A", "A+")
GRADE_RANK = {g: i for i, g in enumerate(GRADES)}

_MEMO_SIZE = 4_096
_MEMO_TEXT_LIMIT = 512  # longer texts are rare; do not let them fill the memo


class StrictModel(BaseModel):
    """Base of every mapping model: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` is refused, or None when it is safe to use."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"regex is longer than {MAX_PATTERN_LENGTH} characters; simplify it"
    try:
        re2.compile(pattern, _re2_options(ignore_case=True))
    except UnicodeError:
        return f"regex {pattern!r} holds characters that are not valid text; retype it"
    except re2.error as error:
        reason = error.args[0] if error.args else "not a pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return (f"bad regex {pattern!r} ({reason}); mapping regexes run on a "
                "linear-time engine (RE2) without back-references or look-around: rewrite "
                "it, or use contains_any / starts_with")
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


class Condition(StrictModel):
    """``field`` compared with ``value`` by the named operator ``op``."""

    field: str = Field(description="A canonical field (fields.yaml), email_domain, or a later "
                                   "fact such as grade, score, segment, stage, persona; in "
                                   "activity filters, a detail such as url or form.")
    op: Operator = Field(description="equals, in, contains_any, starts_with, regex, between, "
                                     "gt, gte, lt, lte or is_blank.")
    value: Any = Field(None, description="What to compare with: one value, a list for in / "
                                         "contains_any, [low, high] for between, a pattern "
                                         "for regex, true/false for is_blank.")

    @model_validator(mode="after")
    def _value_fits_operator(self) -> Condition:
        problem = _value_problem(self.op, self.value, self.field)
        if problem:
            raise ValueError(problem)
        return self


def _value_problem(op: str, value: Any, field: str) -> str | None:
    ranked = field == "grade"
    if op == "equals":
        return None if _is_scalar(value) else "'equals' needs one value (a word or number)"
    if op in ("in", "contains_any", "starts_with"):
        if op == "starts_with" and isinstance(value, str):
            return None
        if not isinstance(value, list) or not value or not all(_is_scalar(v) for v in value):
            return f"'{op}' needs a non-empty list of values, e.g. value: [a, b]"
        return None
    if op == "regex":
        if not isinstance(value, str):
            return "'regex' needs a pattern string"
        return regex_problem(value)
    if op == "between":
        if not (isinstance(value, list) and len(value) == 2):
            return "'between' needs two values: value: [low, high]"
        low, high = (_rank_value(v) if ranked else v for v in value)
        if not (_is_number(low) and _is_number(high)):
            return "'between' needs two numbers" + (" or grades" if ranked else "")
        if low > high:
            return f"'between' low {value[0]} is above high {value[1]}; swap them"
        return None
    if op in ("gt", "gte", "lt", "lte"):
        checked = _rank_value(value) if ranked else value
        if not _is_number(checked):
            return f"'{op}' needs a number" + (" or a grade like B" if ranked else "")
        return None
    # is_blank
    if value is not None and not isinstance(value, bool):
        return "'is_blank' takes true or false (or nothing, meaning true)"
    return None


def _rank_value(value: Any) -> Any:
    if isinstance(value, str) and value in GRADE_RANK:
        return GRADE_RANK[value]
    return value


def _fold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def _as_number(value: Any) -> float | None:
    if type(value) is int or type(value) is float:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _memo_text(key: str, test: Callable[[str], bool]) -> Predicate:
    """A text test remembered per distinct text: titles and URLs repeat across people, and a
    dict lookup is cheaper than a regex. Bounded, and the answer never depends on the memo."""
    memo: dict[str, bool] = {}

    def predicate(facts: Mapping[str, Any]) -> bool:
        text = facts.get(key)
        if not isinstance(text, str):
            return False
        if len(text) > _MEMO_TEXT_LIMIT:
            return test(text)
        hit = memo.get(text)
        if hit is None:
            hit = test(text)
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[text] = hit
        return hit

    return predicate


def _re2_search(pattern: str) -> Callable[[str], bool]:
    search = re2.compile(pattern, _re2_options(ignore_case=True)).search

    def test(text: str) -> bool:
        text = text[:MAX_SUBJECT_LENGTH]
        try:
            return search(text) is not None
        except UnicodeEncodeError:  # a lone surrogate from broken remote data: match the rest
            return search(text.encode("utf-8", "replace").decode("utf-8")) is not None

    return test


def compile_condition(cond: Condition) -> Predicate:
    """Build the fast predicate for one validated condition: one closure, one dict lookup."""
    key = cond.field
    op = cond.op
    value = cond.value
    if key == "grade" and op in ("between", "gt", "gte", "lt", "lte"):
        key = "grade_rank"
        value = [_rank_value(v) for v in value] if op == "between" else _rank_value(value)
    if op == "is_blank":
        want = value is None or bool(value)
        return lambda facts: _blank(facts.get(key)) == want
    if op == "equals":
        target = _fold(value)
        return lambda facts: (v := facts.get(key)) is not None and _fold(v) == target
    if op == "in":
        options = frozenset(_fold(v) for v in value)

        def member(facts: Mapping[str, Any]) -> bool:
            v = facts.get(key)
            if v is None:
                return False
            try:
                return _fold(v) in options
            except TypeError:  # an unhashable value (a list) is simply not a member
                return False

        return member
    if op == "contains_any":
        needles = tuple(str(v).casefold() for v in value)
        return _memo_text(key, lambda text: any(n in text.casefold() for n in needles))
    if op == "starts_with":
        prefixes = tuple(str(v).casefold() for v in ([value] if isinstance(value, str) else value))
        return _memo_text(key, lambda text: text.casefold().startswith(prefixes))
    if op == "regex":
        return _memo_text(key, _re2_search(value))
    if op == "between":
        low, high = float(value[0]), float(value[1])

        def between(facts: Mapping[str, Any]) -> bool:
            n = _as_number(facts.get(key))
            return n is not None and low <= n <= high

        return between
    bound = float(value)
    if op == "gt":
        return lambda facts: (n := _as_number(facts.get(key))) is not None and n > bound
    if op == "gte":
        return lambda facts: (n := _as_number(facts.get(key))) is not None and n >= bound
    if op == "lt":
        return lambda facts: (n := _as_number(facts.get(key))) is not None and n < bound
    return lambda facts: (n := _as_number(facts.get(key))) is not None and n <= bound


def compile_all(conditions: Sequence[Condition]) -> Predicate:
    """All conditions must hold; an empty list always holds."""
    predicates = tuple(compile_condition(c) for c in conditions)
    if not predicates:
        return lambda facts: True
    if len(predicates) == 1:
        return predicates[0]
    return lambda facts: all(p(facts) for p in predicates)
