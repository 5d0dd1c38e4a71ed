"""The engine's own features of each person at its snapshot, for calibration.

One pass over the persons extracts what does not depend on the tuning (which rule each
activity earns, its age, the grade, which profile rules hold);
``design`` then builds the feature matrix for one half-life and one set of recency bands in
numpy, so trying a grid costs little.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from syncagent.engine.evaluate import person_facts
from syncagent.engine.loader import Rules
from syncagent.engine.operators import GRADE_RANK
from syncagent.learn.metrics import Floats
from syncagent.learn.persons import LabelledPerson

_DAY = 86_400.0
#: Fit as "grade X or better" steps: readable rules, and each step's points add up.
GRADE_STEPS = ("D-", "C-", "B-", "A-")


@dataclass(frozen=True)
class Column:
    """What one feature is, so its coefficient can become a rule's points."""

    kind: str          # activity | recency | grade | profile
    name: str          # rule name, band limit in days, or grade step
    index: int = 0     # activity/profile rule index in the shipped scoring file


@dataclass(frozen=True)
class Extracted:
    """Per person and per activity hit, everything ``design`` needs."""

    n: int
    hit_person: np.ndarray       # int: person index of each scored activity
    hit_rule: np.ndarray         # int: activity rule index it earned
    hit_age_days: Floats
    grade_rank: np.ndarray       # int
    profile_hits: np.ndarray     # bool, persons x profile rules
    rule_names: tuple[str, ...]
    rule_positive: tuple[bool, ...]   # the rule's points are positive (it keeps its sign)
    rule_decays: tuple[bool, ...]     # its points fade with age (positive and not decays: false)
    profile_names: tuple[str, ...]


def _rule_of(kind: str, details: Mapping[str, object], rules: Rules) -> int | None:
    """The activity rule an activity earns: the first of its kind whose conditions hold."""
    sc = rules.compiled.scoring
    single = sc.unconditional.get(kind)
    if single is not None:
        return single[1]
    for test, _points, index, _decays in sc.fast_by_kind.get(kind, ()):
        if test is None or test(details):
            return index
    return None


def extract(persons: Sequence[LabelledPerson], rules: Rules) -> Extracted:
    """One pass over the persons with the rules in use (their conditions and grading)."""
    sc = rules.compiled.scoring
    positive = tuple(r.points > 0 for r in sc.rules)
    hits_p: list[int] = []
    hits_r: list[int] = []
    ages: list[float] = []
    grades = np.zeros(len(persons), dtype=int)
    profile = np.zeros((len(persons), len(sc.profile_rules)), dtype=bool)
    for i, item in enumerate(persons):
        facts, _grade, rank = person_facts(item.person, rules)
        grades[i] = rank
        for j, (_name, test, _points, _cat) in enumerate(sc.profile_rules):
            profile[i, j] = bool(test(facts))
        now_ts = item.at.timestamp()
        for activity in item.person.activities:
            index = _rule_of(activity.kind, activity.details, rules)
            if index is None:
                continue
            age = max(0.0, now_ts - activity.occurred_at.timestamp()) / _DAY
            hits_p.append(i)
            hits_r.append(index)
            ages.append(age)
    return Extracted(len(persons), np.array(hits_p, dtype=int), np.array(hits_r, dtype=int),
                     np.array(ages), grades, profile,
                     tuple(r.name for r in sc.rules), positive,
                     tuple(r.decays for r in sc.rules),
                     tuple(p[0] for p in sc.profile_rules))


def columns(ex: Extracted, bands: Sequence[float]) -> list[Column]:
    out = [Column("activity", name, i) for i, name in enumerate(ex.rule_names)]
    out += [Column("recency", f"{b:g}") for b in bands]
    out += [Column("grade", step) for step in GRADE_STEPS]
    out += [Column("profile", name, i) for i, name in enumerate(ex.profile_names)]
    return out


def last_ages(ex: Extracted, positive: Sequence[bool]) -> Floats:
    """Days from each person's newest activity of a positively scored rule to the snapshot
    (NaN: none): the engine's recency counts only activity that earns points."""
    mask = np.asarray(positive, dtype=bool)[ex.hit_rule] if len(ex.hit_rule) else \
        np.zeros(0, dtype=bool)
    newest = np.full(ex.n, np.inf)
    np.minimum.at(newest, ex.hit_person[mask], ex.hit_age_days[mask])
    return np.where(np.isinf(newest), np.nan, newest)


def design(ex: Extracted, half_life_days: float, bands: Sequence[float],
           positive: Sequence[bool] | None = None) -> Floats:
    """The feature matrix, as the engine would score with rules of these signs: per activity
    rule its decayed count (a plain count for a penalty, which the engine never decays, or for
    a rule written with ``decays: false``), one
    column per recency band (the first band the newest positively scored activity falls in),
    the grade steps and the profile rules."""
    rules = len(ex.rule_names)
    positive = ex.rule_positive if positive is None else positive
    decays = np.asarray(positive, dtype=bool) & np.asarray(ex.rule_decays, dtype=bool)
    fade = np.exp(-math.log(2) / half_life_days * ex.hit_age_days)
    weight = np.where(decays[ex.hit_rule], fade, 1.0) if len(ex.hit_rule) else np.zeros(0)
    flat = ex.hit_person * rules + ex.hit_rule
    activity = np.bincount(flat, weights=weight, minlength=ex.n * rules).reshape(ex.n, rules)
    return np.hstack([activity, _recency(last_ages(ex, positive), bands),
                      _grades(ex), ex.profile_hits.astype(float)])


def _recency(last: Floats, bands: Sequence[float]) -> Floats:
    out = np.zeros((len(last), len(bands)))
    ages = np.nan_to_num(last, nan=np.inf)
    placed = np.zeros(len(last), dtype=bool)
    for j, limit in enumerate(sorted(bands)):
        inside = ~placed & (ages <= limit)
        out[inside, j] = 1.0
        placed |= inside
    return out


def _grades(ex: Extracted) -> Floats:
    return np.stack([ex.grade_rank >= GRADE_RANK[s] for s in GRADE_STEPS],
                    axis=1).astype(float)
