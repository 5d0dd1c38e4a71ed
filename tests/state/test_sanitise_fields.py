"""clean_fields' fast path for clean records (one check of all texts at once) answers exactly
what the value-by-value path answers, for clean and hostile records alike: a bad value at any
depth, in a key or a value, still takes the path that cleans and reports it."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state.sanitise import MAX_TEXT, REPLACEMENT, clean_each, clean_fields
from tests.fuzz.strategies import json_values, nasty_text


class _Text(str):
    """A str subclass: the fast path must not take it for plain text."""


@pytest.mark.parametrize("fields", [
    # a Salesforce activity's details carry the whole row, nested: the bad value is deep
    {"subject": "Call", "fields": {"Id": "00T1", "Description": "ok\x00not ok"}},
    {"fields": {"rows": [{"deeper": [1, 2, "\ud800"]}]}},
    {"a": "fine", "b\x00": "a key with a NUL"},
    {"nested": {"k\udfff": 1}},
    {"n": math.nan}, {"n": [1.0, math.inf]}, {"n": {"x": -math.inf}},
    {"t": "x" * (MAX_TEXT + 1)},
    {"t": ("a", "b")}, {"t": {"inner": ("a",)}},
    {"k": {1: "an int key"}},
    {"s": _Text("a subclass")},
    {"deep": [[[[[[[[[[[["twelve lists down\x00"]]]]]]]]]]]]},
    {"deep": [[[[[[[[[[[["twelve lists down, clean"]]]]]]]]]]]]},
])
def test_a_bad_value_anywhere_is_cleaned_and_reported_as_value_by_value(
        fields: dict[str, Any]) -> None:
    assert clean_fields(fields) == clean_each(fields)


def test_a_nul_deep_in_an_activity_row_is_reported_and_removed() -> None:
    clean, problems = clean_fields({"subject": "Call",
                                    "fields": {"Id": "00T1", "Description": "a\x00b"}})
    assert problems == [("fields", "nested value cleaned for storage")]
    assert clean["fields"]["Description"] == "ab"


def test_a_lone_surrogate_in_a_key_is_replaced() -> None:
    clean, _ = clean_fields({"k\ud800": "v", "plain": "é"})
    assert clean == {f"k{REPLACEMENT}": "v", "plain": "é"}


def test_clean_records_come_back_equal_with_no_problem() -> None:
    fields = {"Id": "00Q1", "Email": "a@b.example", "Name": "Müller 日本", "N": 3,
              "F": 1.5, "B": True, "X": None, "T": "x" * MAX_TEXT,
              "fields": {"rows": [1, "two", {"three": None}]}}
    assert clean_fields(fields) == (fields, [])


records = st.dictionaries(st.one_of(nasty_text, st.integers()),
                          st.one_of(json_values, st.tuples(json_values)), max_size=6)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(records)
def test_the_fast_path_agrees_with_the_value_by_value_path(fields: dict[Any, Any]) -> None:
    fast, slow = clean_fields(fields), clean_each(fields)
    assert fast[1] == slow[1]
    assert repr(fast[0]) == repr(slow[0])   # repr: NaN is never equal to itself
