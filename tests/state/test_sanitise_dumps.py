"""The store's JSON serializer: the same text as ``json.dumps`` with sorted keys for every
clean value (SQLite stores that text, and compares it), and for the worst values (NUL, lone
surrogates, NaN and infinity, in keys or values, at any depth) a text neither database
refuses. The reference is the serializer as it was before it kept one encoder."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state.sanitise import REPLACEMENT, clean_value, dumps


def _reference(value: Any) -> str:
    """``dumps`` as it was: ``json.dumps`` per call, cleaned again when the text is unsafe."""
    def plain(v: Any) -> str:
        return json.dumps(v, sort_keys=True, default=str, allow_nan=False)
    try:
        text = plain(value)
    except ValueError:
        return plain(clean_value(value))
    if "\\u0000" in text or ("\\ud" in text and _LONE_ESCAPE.search(text)):
        return plain(clean_value(value))
    return text


_LONE_ESCAPE = re.compile(r"\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f][0-9a-f]{2})|"
                          r"(?<!\\ud[89ab][0-9a-f]{2})\\ud[c-f][0-9a-f]{2}")


def _any_string(value: Any, test: Any) -> bool:
    if isinstance(value, str):
        return bool(test(value))
    if isinstance(value, dict):
        return any(test(k) or _any_string(v, test) for k, v in value.items())
    if isinstance(value, list):
        return any(_any_string(v, test) for v in value)
    return False


def _storable(text: str) -> bool:
    decoded = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} stored"))
    return not _any_string(decoded, lambda s: "\x00" in s or any(
        0xD800 <= ord(c) <= 0xDFFF for c in s))


WORST: list[Any] = [
    None, "", "\x00", "\ud800", "\udfff", "\ud83d\ude00", "😀", "é ü 中",
    {"nul\x00key": "nul\x00value", "lone\udc00": ["\ud800x", {"deep": "\x00" * 3}]},
    {"n": math.nan, "i": [math.inf, -math.inf, 1.5], "ok": 10**30},
    {"b": 1, "a": {"d": None, "c": [True, False]}, "": ""},
    {"when": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "price": Decimal("1.10"),
     "kinds": {1, 2} - {1}, "pair": ("x", 2)},
    {"1": "a", "10": "b", "9": "c", "é": "sorted by code point"},
    ["x" * 200_000, {"long": "\ud800" + "y" * 100_000}],
    [[[[[[{"z": "\x00"}]]]]]],
]


@pytest.mark.parametrize("value", WORST, ids=range(len(WORST)))
def test_the_worst_values_give_the_same_safe_text_as_before(value: Any) -> None:
    text = dumps(value)
    assert text == _reference(value)
    assert _storable(text)


def test_bad_text_is_cleaned_not_dropped() -> None:
    assert json.loads(dumps({"k\x00": "a\x00b", "s": "x\ud800y"})) == {
        "k": "ab", "s": f"x{REPLACEMENT}y"}
    assert dumps(math.nan) == "null"
    assert dumps("\ud83d\ude00") == '"\\ud83d\\ude00"'   # a valid pair is kept


def test_a_value_that_cannot_be_stored_is_refused_not_mangled() -> None:
    with pytest.raises(TypeError):    # keys of mixed kinds cannot be sorted
        dumps({1: "a", "b": 2})
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(RecursionError):
        dumps(deep)
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises((RecursionError, ValueError)):
        dumps(loop)


def test_an_error_leaves_the_serializer_as_it_was() -> None:
    """The encoder is kept between calls: a failed value must not affect the next one."""
    shared = {"x": [1, 2]}
    with pytest.raises(TypeError):
        dumps({"a": shared, 1: "mixed"})
    assert dumps({"again": shared}) == '{"again": {"x": [1, 2]}}'


_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
                max_size=12)
_LEAF = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
         | _TEXT)
_JSONISH = st.recursive(_LEAF, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=20)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(_JSONISH)
def test_any_value_gives_the_same_text_as_before(value: Any) -> None:
    text = dumps(value)
    assert text == _reference(value)
    assert _storable(text)
