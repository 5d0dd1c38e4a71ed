"""A decision's reasons as the short text written to a long-text CRM field (such as
Score_Reasons__c): rendered from the parts of a decision in memory (``Decision.reasons_text``)
or from a stored decision's reasons (``reasons_text_of``), which no longer keep the text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def reasons_text_of(reasons: Mapping[str, Any], limit: int = 32_000) -> str:
    """The text ``Decision.reasons_text()`` gave, from a stored decision's reasons: a row
    stored with its text (before ``Decision.stored``) reads it as stored."""
    stored = reasons.get("reasons_text")
    if stored is not None:
        return _cut(str(stored), limit)
    grade, score, segment = reasons["grade"], reasons["score"], reasons["segment"]
    stage, owner, track = reasons["stage"], reasons["owner"], reasons["track"]
    return rendered(grade["grade"], grade["reasons"], score["score"], score["reasons"],
                     segment["segment"], segment["reason"], stage["stage"], stage["reason"],
                     owner["why"], track["track"], track["reason"], limit)


def rendered(grade: Any, grade_reasons: Sequence[str], score: Any,
              score_reasons: Sequence[str], segment: Any, segment_reason: Any, stage: Any,
              stage_reason: Any, owner_why: Any, track: Any, track_reason: Any,
              limit: int) -> str:
    """The summary's lines from a decision's parts: one renderer for a decision in memory
    (``Decision.reasons_text``) and one read back, so the two texts cannot drift."""
    lines = [
        f"Grade {grade}: " + ("; ".join(grade_reasons) or "no criteria"),
        f"Score {score}: " + ("; ".join(score_reasons) or "no activity"),
        f"Segment {segment}: {segment_reason}",
        f"Stage {stage}: {stage_reason}",
        f"Owner: {owner_why}",
        f"Track {track or '-'}: {track_reason}",
    ]
    text = "\n".join(lines)
    return _cut(text, limit)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
