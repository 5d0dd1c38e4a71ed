"""Grading: fit to the ideal customer profile, A+ … F in thirds of a letter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncagent.engine.model import GradeResult
from syncagent.engine.operators import GRADE_RANK, GRADES, Predicate, compile_all
from syncagent.engine.rule_files import STEP_THIRDS, GradingFile

_STEP_TEXT = {3: "+1 letter", 2: "+2/3 letter", 1: "+1/3 letter", -1: "-1/3 letter",
              -2: "-2/3 letter", -3: "-1 letter"}


@dataclass(frozen=True, slots=True)
class CompiledCriterion:
    name: str
    test: Predicate
    fields: tuple[str, ...]
    match: int
    mismatch: int
    blank_is_mismatch: bool
    match_text: str = ""
    mismatch_text: str = ""


@dataclass(frozen=True, slots=True)
class CompiledProfile:
    name: str
    applies: Predicate
    start: int
    criteria: tuple[CompiledCriterion, ...]
    intro: str = ""

    def best_rank(self) -> int:
        return min(len(GRADES) - 1, self.start + sum(c.match for c in self.criteria))


@dataclass(frozen=True, slots=True)
class CompiledGrading:
    profiles: tuple[CompiledProfile, ...]
    personas: tuple[tuple[str, Predicate], ...]

    def best_rank(self) -> int:
        return max(p.best_rank() for p in self.profiles)


def compile_grading(spec: GradingFile) -> CompiledGrading:
    profiles = tuple(
        CompiledProfile(
            p.name, compile_all(p.when), GRADE_RANK[p.start],
            tuple(CompiledCriterion(
                c.name, compile_all(c.when),
                tuple(dict.fromkeys(w.field for w in c.when if w.op != "is_blank")),
                STEP_THIRDS[c.match], STEP_THIRDS[c.mismatch], c.blank == "mismatch",
                f"{c.name} matches ({_STEP_TEXT.get(STEP_THIRDS[c.match], '')})",
                f"{c.name} does not match ({_STEP_TEXT.get(STEP_THIRDS[c.mismatch], '')})")
                for c in p.criteria),
            f"profile {p.name}, start {p.start}")
        for p in spec.profiles)
    personas = tuple((p.name, compile_all(p.when)) for p in spec.personas)
    return CompiledGrading(profiles, personas)


def _any_blank(facts: Mapping[str, Any], fields: tuple[str, ...]) -> bool:
    for name in fields:
        value = facts.get(name)
        # (blank(value) for text, inline: a call less for every criterion's every field)
        if value is None or value == "" or (type(value) is str and not value.strip()):
            return True
    return False


def pick_persona(facts: Mapping[str, Any], grading: CompiledGrading) -> str | None:
    for name, applies in grading.personas:
        if applies(facts):
            return name
    return None


def grade(facts: Mapping[str, Any], grading: CompiledGrading) -> tuple[GradeResult, int]:
    """The grade, the profile used and the criteria that moved it; plus the grade's rank."""
    for profile in grading.profiles:
        if profile.applies(facts):
            break
    else:
        rank = GRADE_RANK["D"]
        return GradeResult("D", None, ("no grading profile applies, so D",)), rank
    rank = profile.start
    reasons: list[str] = []
    for c in profile.criteria:
        if not c.blank_is_mismatch and _any_blank(facts, c.fields):
            continue  # unknown is not a mismatch: missing data should not sink a grade
        if c.test(facts):
            rank += c.match
            if c.match:
                reasons.append(c.match_text)
        else:
            rank += c.mismatch
            if c.mismatch:
                reasons.append(c.mismatch_text)
    rank = max(0, min(len(GRADES) - 1, rank))
    reasons.insert(0, profile.intro)
    return GradeResult(GRADES[rank], profile.name, tuple(reasons)), rank
