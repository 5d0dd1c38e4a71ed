"""normalise_phone answers two shapes without phonenumbers' parse: each is pinned here to what
the parse itself gives (``_parsed_phone``), on generated numbers and on the worst inputs, so a
phonenumbers upgrade that reads them otherwise fails here first."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncagent.engine.normalise import _parsed_phone, blank, normalise_phone


def _slow(value: Any) -> str | None:
    """normalise_phone as it was: every value through the parse."""
    return None if blank(value) else _parsed_phone(str(value).strip())


NANP = st.builds(lambda first, rest: f"+1{first}{rest}", st.sampled_from("23456789"),
                 st.text("0123456789", min_size=9, max_size=9))
NO_PLUS = st.text(st.characters(blacklist_characters="+\uff0b"), max_size=300)


@settings(max_examples=3_000, deadline=None, database=None, derandomize=True)
@given(NANP)
def test_an_e164_nanp_number_reads_as_itself_as_the_parse_says(text: str) -> None:
    assert _parsed_phone(text) == text
    assert normalise_phone(text) == text
    assert normalise_phone(f"  {text}\n") == text


def test_every_area_and_exchange_code_of_nanp_reads_as_the_parse_says() -> None:
    rng = random.Random(18)
    for area in range(200, 1000):
        for _ in range(3):
            text = f"+1{area}{rng.randrange(10**7):07d}"
            assert normalise_phone(text) == _parsed_phone(text) == text


@settings(max_examples=3_000, deadline=None, database=None, derandomize=True)
@given(NO_PLUS)
def test_text_without_a_plus_sign_reads_as_the_parse_says(text: str) -> None:
    assert normalise_phone(text) == _slow(text)


@settings(max_examples=2_000, deadline=None, database=None, derandomize=True)
@given(st.text("0123456789+ ()-.x#;ext=\uff0b\u0661\uff11", max_size=40))
def test_phone_like_text_reads_as_the_parse_says(text: str) -> None:
    assert normalise_phone(text) == _slow(text)


WORST: list[Any] = [
    None, "", "   ", "\t\n", math.nan, math.inf, 0, 15550000001, 5550000001.0, True,
    "\x00", "+1555000000\x00", "\x00+15550000001", "+1\x005550000001",
    "+15550000001", "+1555000000", "+155500000011", "+11550000001", "+10550000001",
    "+15550000001;ext=12", "+1 555 000 0001", "+1-555-000-0001", "tel:+15550000001",
    "+" + "\uff11\uff15\uff15\uff15" + "\uff10" * 6 + "\uff11",
    "\uff0b15550000001", "+1" + "\u0665" * 3 + "\u0660" * 6 + "\u0661", "+1\u00a05550000001",
    "(555) 123-4567", "555.123.4567 x12", "0044 20 7946 0958", "+44 20 7946 0958",
    "+4402079460958", "+390612345678", "1;phone-context=+1", "5550000001;phone-context=+1",
    "+" * 100_000, "1" * 100_000, "+1" + "5" * 100_000, "\ud800", "+1555\ud8000000001",
    "電話 +15550000001", "+15550000001 ", "+15550000001\n+15550000002",
]


@pytest.mark.parametrize("value", WORST, ids=lambda v: repr(v)[:30])
def test_the_worst_inputs_read_as_the_parse_says(value: Any) -> None:
    assert normalise_phone(value) == _slow(value)


class _Text(str):
    def __str__(self) -> str:
        return "+44 20 7946 0958"


def test_a_str_subclass_reads_as_its_str_as_before() -> None:
    value = _Text("+15550000001")
    assert normalise_phone(value) == _slow(value) == "+442079460958"
