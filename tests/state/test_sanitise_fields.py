"""clean_fields' quick check of a clean record gives what the value-by-value path gives, for
any record: clean, dirty, nested or odd."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from state.sanitise import MAX_TEXT, _careful_clean, clean_fields

TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=12)  # NUL, surrogates
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), TEXT)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)
KEYS = st.one_of(TEXT, st.integers())


def _same(a: Any, b: Any) -> bool:
    """Equal, counting NaN equal to NaN (the careful path keeps a NaN it does not clean)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@given(st.dictionaries(KEYS, VALUES, max_size=6))
def test_quick_check_agrees_with_the_careful_path(fields: dict[Any, Any]) -> None:
    fast, fast_problems = clean_fields(fields)
    slow, slow_problems = _careful_clean(fields)
    assert fast_problems == slow_problems
    assert _same(fast, slow)


def test_what_the_quick_check_must_not_pass() -> None:
    cases: list[dict[str, Any]] = [
        {"a": "x\x00y"}, {"a": "\ud800"}, {"a\x00": 1}, {"a": float("nan")},
        {"a": float("inf")}, {"a": "x" * (MAX_TEXT + 1)},
        {"fields": {"b": "x\x00"}}, {"fields": {"b": float("nan")}},
        {"fields": {"b": {"c": "\udc00"}}}, {"a": ["x\x00"]},
    ]
    for fields in cases:   # each is reported, or (a key) cleaned silently
        clean, problems = clean_fields(fields)
        assert problems or not _same(clean, fields), fields


def test_a_long_text_one_level_down_is_kept_whole() -> None:
    """Only a field's own text is cut to MAX_TEXT; the careful path does not cut nested ones."""
    fields = {"fields": {"Description": "x" * (MAX_TEXT + 1)}, "kind": "call"}
    assert clean_fields(fields) == (fields, [])
