"""The engine's own features of each person at its snapshot, for calibration.

One pass over the persons extracts what does not depend on the tuning (which rule each
activity earns, its age and its time since the person's creation, the grade, which profile
rules hold); ``design`` then builds the feature matrix for one half-life, one recency form
(bands or a smooth fade) and one early window in numpy, so trying a grid costs little.
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
#: The funnel events whose timing after the person's creation may matter (early bands).
KEY_KINDS = frozenset({"form_submission", "webinar_attended", "call_connected", "meeting_set",
                       "meeting_completed", "demo_completed", "opportunity_created"})


@dataclass(frozen=True)
class RecencyForm:
    """How recency is scored: steps (``bands``, days) or a smooth fade (``half_life_days``)."""

    bands: tuple[float, ...] = ()
    half_life_days: float | None = None

    def describe(self) -> dict[str, object]:
        if self.half_life_days is not None:
            return {"half_life_days": self.half_life_days}
        return {"bands": list(self.bands)}


@dataclass(frozen=True)
class Column:
    """What one feature is, so its coefficient can become a rule's points."""

    kind: str          # activity | recency | grade | profile | early
    name: str          # rule name, band limit in days ("smooth" for the fade), or grade step
    index: int = 0     # activity/profile rule index (among the file's activity rules)


@dataclass(frozen=True)
class Extracted:
    """Per person and per activity hit, everything ``design`` needs."""

    n: int
    hit_person: np.ndarray       # int: person index of each scored activity
    hit_rule: np.ndarray         # int: activity rule (position in the file) it earned
    hit_age_days: Floats
    hit_since_creation_days: Floats   # NaN: the person's creation time is unknown
    grade_rank: np.ndarray       # int
    profile_hits: np.ndarray     # bool, persons x profile rules
    rule_names: tuple[str, ...]
    rule_positive: tuple[bool, ...]   # the rule's points are positive (it keeps its sign)
    rule_decays: tuple[bool, ...]     # its points fade with age (positive and not decays: false)
    profile_names: tuple[str, ...]
    rule_key: tuple[bool, ...] = ()   # a funnel event whose timing may matter (KEY_KINDS)

    def early_rules(self) -> list[int]:
        """Key rules that earn points: the ones an early band may be fitted for."""
        return [i for i, (key, pos) in enumerate(zip(self.rule_key, self.rule_positive,
                                                     strict=True)) if key and pos]


def _rule_of(kind: str, details: Mapping[str, object], rules: Rules) -> int | None:
    """The activity rule an activity earns (its index among the compiled rules, early bands
    included): the first of its kind whose conditions hold."""
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
    # The file's own rules, not their early bands (each band is a rule of the compiled list).
    base = [i for i, r in enumerate(sc.rules) if r.base < 0]
    position = {index: n for n, index in enumerate(base)}
    kinds = {r.name: kind for kind, compiled in sc.by_kind.items() for r in compiled}
    hits_p: list[int] = []
    hits_r: list[int] = []
    ages: list[float] = []
    since: list[float] = []
    grades = np.zeros(len(persons), dtype=int)
    profile = np.zeros((len(persons), len(sc.profile_rules)), dtype=bool)
    for i, item in enumerate(persons):
        facts, _grade, rank = person_facts(item.person, rules)
        grades[i] = rank
        for j, (_name, test, _points, _cat) in enumerate(sc.profile_rules):
            profile[i, j] = bool(test(facts))
        now_ts = item.at.timestamp()
        created = item.person.created_at
        created_ts = created.timestamp() if created is not None else math.nan
        for activity in item.person.activities:
            index = _rule_of(activity.kind, activity.details, rules)
            if index is None:
                continue
            ts = activity.occurred_at.timestamp()
            hits_p.append(i)
            hits_r.append(position[index])
            ages.append(max(0.0, now_ts - ts) / _DAY)
            since.append((ts - created_ts) / _DAY)
    rules_in_file = [sc.rules[i] for i in base]
    return Extracted(len(persons), np.array(hits_p, dtype=int), np.array(hits_r, dtype=int),
                     np.array(ages), np.array(since), grades, profile,
                     tuple(r.name for r in rules_in_file),
                     tuple(r.points > 0 for r in rules_in_file),
                     tuple(r.decays for r in rules_in_file),
                     tuple(p[0] for p in sc.profile_rules),
                     tuple(kinds[r.name] in KEY_KINDS for r in rules_in_file))


def columns(ex: Extracted, recency: RecencyForm, early_days: float | None = None
            ) -> list[Column]:
    out = [Column("activity", name, i) for i, name in enumerate(ex.rule_names)]
    if recency.half_life_days is not None:
        out.append(Column("recency", "smooth"))
    else:
        out += [Column("recency", f"{b:g}") for b in recency.bands]
    out += [Column("grade", step) for step in GRADE_STEPS]
    out += [Column("profile", name, i) for i, name in enumerate(ex.profile_names)]
    if early_days is not None:
        out += [Column("early", ex.rule_names[i], i) for i in ex.early_rules()]
    return out


def last_ages(ex: Extracted, positive: Sequence[bool]) -> Floats:
    """Days from each person's newest activity of a positively scored rule to the snapshot
    (NaN: none): the engine's recency counts only activity that earns points."""
    mask = np.asarray(positive, dtype=bool)[ex.hit_rule] if len(ex.hit_rule) else \
        np.zeros(0, dtype=bool)
    newest = np.full(ex.n, np.inf)
    np.minimum.at(newest, ex.hit_person[mask], ex.hit_age_days[mask])
    return np.where(np.isinf(newest), np.nan, newest)


def design(ex: Extracted, half_life_days: float, recency: RecencyForm,
           early_days: float | None = None, positive: Sequence[bool] | None = None) -> Floats:
    """The feature matrix, as the engine would score with rules of these signs: per activity
    rule its decayed count (a plain count for a penalty, which the engine never decays, or for
    a rule written with ``decays: false``); recency (one column per band: the first band the
    newest positively scored activity falls in; or the smooth fade of its age); the grade
    steps and the profile rules; and with ``early_days``, per key rule the decayed count of
    its activities within that many days of the person's creation (what an early band adds
    to the rule's own points)."""
    rules = len(ex.rule_names)
    positive = ex.rule_positive if positive is None else positive
    decays = np.asarray(positive, dtype=bool) & np.asarray(ex.rule_decays, dtype=bool)
    fade = np.exp(-math.log(2) / half_life_days * ex.hit_age_days)
    weight = np.where(decays[ex.hit_rule], fade, 1.0) if len(ex.hit_rule) else np.zeros(0)
    activity = activity_where(ex, weight, rules)
    parts = [activity, _recency(last_ages(ex, positive), recency), _grades(ex),
             ex.profile_hits.astype(float)]
    if early_days is not None:
        # before the creation counts as early (the engine's first band), unknown never does
        early = np.nan_to_num(ex.hit_since_creation_days, nan=np.inf) <= early_days
        kept = ex.early_rules()
        parts.append(activity_where(ex, weight * early, rules)[:, kept])
    return np.hstack(parts)


def activity_where(ex: Extracted, weight: Floats, rules: int) -> Floats:
    """Per person and rule, the sum of ``weight`` over the person's hits of that rule."""
    flat = ex.hit_person * rules + ex.hit_rule
    summed = np.bincount(flat, weights=weight, minlength=ex.n * rules)
    return np.asarray(summed, dtype=float).reshape(ex.n, rules)


def _recency(last: Floats, form: RecencyForm) -> Floats:
    ages = np.nan_to_num(last, nan=np.inf)
    if form.half_life_days is not None:
        return np.exp(-math.log(2) / form.half_life_days * ages).reshape(-1, 1)
    out = np.zeros((len(last), len(form.bands)))
    placed = np.zeros(len(last), dtype=bool)
    for j, limit in enumerate(sorted(form.bands)):
        inside = ~placed & (ages <= limit)
        out[inside, j] = 1.0
        placed |= inside
    return out


def _grades(ex: Extracted) -> Floats:
    return np.stack([ex.grade_rank >= GRADE_RANK[s] for s in GRADE_STEPS],
                    axis=1).astype(float)
