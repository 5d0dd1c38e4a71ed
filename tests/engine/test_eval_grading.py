"""grading._any_blank with blank() inline answers as with the call, on the worst values."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from syncagent.engine.grading import _any_blank
from syncagent.engine.normalise import blank


def _slow(facts: Mapping[str, Any], fields: tuple[str, ...]) -> bool:
    for name in fields:
        value = facts.get(name)
        if value is None or value == "" or (type(value) is str and blank(value)):
            return True
    return False


class _Text(str):
    pass


WORST: list[Any] = [None, "", " ", "\t\n", "\u00a0", "\u3000", "\x00", " x ", "x", _Text(""),
                    _Text("  "), math.nan, 0, 0.0, False, [], {}, "x" * 100_000,
                    " " * 100_000, "\ud800", "😀", b""]


@pytest.mark.parametrize("value", WORST, ids=lambda v: repr(v)[:20])
def test_any_blank_answers_as_blank_does(value: Any) -> None:
    facts = {"a": value, "b": "set"}
    for fields in (("a",), ("b", "a"), ("missing",), ("b",), ()):
        assert _any_blank(facts, fields) is _slow(facts, fields)
