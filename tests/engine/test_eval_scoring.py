"""scoring.segment's kept texts: the same result as made afresh, for every grade and score,
for numbers that are not exact ints (never kept), and for two rule sets alike but for their
thresholds (kept apart)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from syncagent.engine import load_rules
from syncagent.engine.model import SegmentResult
from syncagent.engine.operators import GRADES
from syncagent.engine.scoring import _segment_text, segment

from .conftest import SHIPPED

SC = load_rules(SHIPPED).compiled.scoring
OTHER = dataclasses.replace(SC, fit_min_rank=SC.fit_min_rank + 1,
                            intent_min_score=SC.intent_min_score + 7)


def _fresh(rank: Any, score: Any, sc: Any) -> SegmentResult:
    return SegmentResult(*_segment_text(rank, score, sc))


def test_every_grade_and_score_reads_as_made_afresh_and_each_result_is_new() -> None:
    for _ in range(2):   # the second pass reads the kept texts
        for sc in (SC, OTHER):
            for rank in range(len(GRADES)):
                for score in range(-5, 250):
                    got = segment(rank, score, sc)
                    assert got == _fresh(rank, score, sc)
                    assert got is not segment(rank, score, sc)


@pytest.mark.parametrize("score", [2.0, 2.5, True, False, math.nan, math.inf, -0.0, 10**30])
def test_numbers_not_exact_ints_read_as_made_afresh(score: Any) -> None:
    segment(3, 2, SC)
    segment(3, 1, SC)
    for rank in (3, True):
        assert segment(rank, score, SC) == _fresh(rank, score, SC)


def test_a_grade_beyond_the_scale_fails_as_before() -> None:
    with pytest.raises(IndexError):
        _fresh(len(GRADES) + 5, 1, SC)
    with pytest.raises(IndexError):
        segment(len(GRADES) + 5, 1, SC)
