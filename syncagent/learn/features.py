"""The engine's own features of each person at its snapshot, for calibration.

One pass over the persons extracts what does not depend on the tuning (which rule each
activity earns, its age, the newest scoring activity, the grade, which profile rules hold);
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
    last_age_days: Floats        # newest positively scored activity (NaN: none)
    grade_rank: np.ndarray       # int
    profile_hits: np.ndarray     # bool, persons x profile rules
    rule_names: tuple[str, ...]
    rule_positive: tuple[bool, ...]   # the shipped rule's points are positive
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
    last = np.full(len(persons), np.nan)
    grades = np.zeros(len(persons), dtype=int)
    profile = np.zeros((len(persons), len(sc.profile_rules)), dtype=bool)
    for i, item in enumerate(persons):
        facts, _grade, rank = person_facts(item.person, rules)
        grades[i] = rank
        for j, (_name, test, _points, _cat) in enumerate(sc.profile_rules):
            profile[i, j] = bool(test(facts))
        now_ts = item.at.timestamp()
        newest = math.inf
        for activity in item.person.activities:
            index = _rule_of(activity.kind, activity.details, rules)
            if index is None:
                continue
            age = max(0.0, now_ts - activity.occurred_at.timestamp()) / _DAY
            hits_p.append(i)
            hits_r.append(index)
            ages.append(age)
            if positive[index]:
                newest = min(newest, age)
        if newest != math.inf:
            last[i] = newest
    return Extracted(len(persons), np.array(hits_p, dtype=int), np.array(hits_r, dtype=int),
                     np.array(ages), last, grades, profile,
                     tuple(r.name for r in sc.rules), positive,
                     tuple(p[0] for p in sc.profile_rules))


def columns(ex: Extracted, bands: Sequence[float]) -> list[Column]:
    out = [Column("activity", name, i) for i, name in enumerate(ex.rule_names)]
    out += [Column("recency", f"{b:g}") for b in bands]
    out += [Column("grade", step) for step in GRADE_STEPS]
    out += [Column("profile", name, i) for i, name in enumerate(ex.profile_names)]
    return out


def design(ex: Extracted, half_life_days: float, bands: Sequence[float],
           decays: Sequence[bool] | None = None) -> Floats:
    """The feature matrix: per activity rule its decayed count (a plain count for a rule
    that does not decay, as the engine counts penalties), one column per recency band
    (the first band the last activity falls in), the grade steps and the profile rules."""
    rules = len(ex.rule_names)
    decays = ex.rule_positive if decays is None else decays
    fade = np.exp(-math.log(2) / half_life_days * ex.hit_age_days)
    weight = np.where(np.asarray(decays, dtype=bool)[ex.hit_rule], fade, 1.0) \
        if len(ex.hit_rule) else np.zeros(0)
    flat = ex.hit_person * rules + ex.hit_rule
    activity = np.bincount(flat, weights=weight, minlength=ex.n * rules).reshape(ex.n, rules)
    recency = np.zeros((ex.n, len(bands)))
    seen = ~np.isnan(ex.last_age_days)
    placed = np.zeros(ex.n, dtype=bool)
    for j, limit in enumerate(sorted(bands)):
        inside = seen & ~placed & (np.nan_to_num(ex.last_age_days, nan=np.inf) <= limit)
        recency[inside, j] = 1.0
        placed |= inside
    grade = np.stack([ex.grade_rank >= GRADE_RANK[s] for s in GRADE_STEPS], axis=1)
    return np.hstack([activity, recency, grade.astype(float), ex.profile_hits.astype(float)])
