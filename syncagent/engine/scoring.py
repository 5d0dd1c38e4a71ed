"""Scoring: interest from activities (decaying), sales signals, recency and profile penalties.

Per category: ``min(cap, decayed positive points) + penalties``; the score is the sum over
categories, floored at 0. Positive points fade with age (half-life or linear); penalties do
not, so a score never rises with the passage of time alone. An activity rule's ``early`` bands
give other points to an activity soon after the person's creation: each band is compiled as a
rule of its own (named "<rule> within N days of creation"), so the reasons say which counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import compress
from typing import Any

from syncagent.engine.model import Activity, Contribution, ScoreResult, SegmentResult
from syncagent.engine.operators import GRADE_RANK, GRADES, Predicate, compile_all
from syncagent.engine.rule_files import ScoringFile

_DAY = 86_400.0
TOP_CONTRIBUTORS = 3


@dataclass(frozen=True, slots=True)
class CompiledActivityRule:
    name: str
    test: Predicate | None
    points: float
    category: int
    decays: bool
    base: int = -1      # an early band: the index of the rule it belongs to; -1: a rule


#: An activity rule's early bands: (seconds since creation, points, rule index), ascending.
Early = tuple[tuple[float, float, int], ...]
#: What the hot loop reads per rule: (test, points, rule index, decays).
FastRule = tuple[Predicate | None, float, int, bool]


@dataclass(frozen=True, slots=True)
class CompiledAlert:
    name: str
    kinds: frozenset[str]
    activity_test: Predicate
    applies: Predicate


@dataclass(frozen=True, slots=True)
class CompiledScoring:
    categories: tuple[str, ...]
    caps: tuple[float | None, ...]
    by_kind: Mapping[str, tuple[CompiledActivityRule, ...]]
    decay_kind: str
    decay_rate: float          # half-life: ln2 / seconds; linear: 1 / seconds
    profile_rules: tuple[tuple[str, Predicate, float, int], ...]
    recency_category: int
    recency_bands: tuple[tuple[float, float], ...]   # (within seconds, points), ascending
    recency_smooth: tuple[float, float] | None        # (max points, ln2 / half-life seconds)
    fit_min_rank: int
    intent_min_score: float
    quadrants: tuple[str, str, str, str]   # hh, hl, lh, ll
    alerts: tuple[CompiledAlert, ...]
    rules: tuple[CompiledActivityRule, ...]
    # kind -> its rules as FastRule tuples: tuples unpack faster than attributes
    fast_by_kind: Mapping[str, tuple[FastRule, ...]]
    # kinds whose first rule has no conditions: (points, rule index, decays), no loop needed
    unconditional: Mapping[str, tuple[float, int, bool]]
    # rule index -> its early bands (rules that have some); empty: the loop skips the look-up
    early_of: Mapping[int, Early]

    def max_score(self) -> float:
        """The most points any person could score (inf when a positive category has no cap)."""
        positive: set[int] = {r.category for rules in self.by_kind.values() for r in rules
                              if r.points > 0}
        positive |= {cat for _, _, pts, cat in self.profile_rules if pts > 0}
        if (self.recency_bands and max(p for _, p in self.recency_bands) > 0) \
                or self.recency_smooth is not None:
            positive.add(self.recency_category)
        total = 0.0
        for index in positive:
            cap = self.caps[index]
            total += math.inf if cap is None else cap
        return total


def early_rule_name(rule: str, within_days: float) -> str:
    """The name an early band scores under (and is shown as in the reasons)."""
    return f"{rule} within {within_days:g} days of creation"


def compile_scoring(spec: ScoringFile) -> CompiledScoring:
    index = {c.name: i for i, c in enumerate(spec.categories)}
    by_kind: dict[str, list[CompiledActivityRule]] = {}
    fast: dict[str, list[FastRule]] = {}
    flat: list[CompiledActivityRule] = []
    early_of: dict[int, Early] = {}
    for rule in spec.activities:
        test = compile_all(rule.when) if rule.when else None
        compiled = CompiledActivityRule(rule.name, test, rule.points, index[rule.category],
                                        rule.decays and rule.points > 0)
        base = len(flat)
        by_kind.setdefault(rule.kind, []).append(compiled)
        flat.append(compiled)
        early: list[tuple[float, float, int]] = []
        for band in sorted(rule.early, key=lambda b: b.within_days_of_creation):
            early.append((band.within_days_of_creation * _DAY, band.points, len(flat)))
            flat.append(CompiledActivityRule(
                early_rule_name(rule.name, band.within_days_of_creation), test, band.points,
                compiled.category, rule.decays and band.points > 0, base))
        fast.setdefault(rule.kind, []).append((test, rule.points, base, compiled.decays))
        if early:
            early_of[base] = tuple(early)
    if spec.decay.kind == "half_life":
        rate = math.log(2) / ((spec.decay.half_life_days or 1) * _DAY)
    elif spec.decay.kind == "linear":
        rate = 1 / ((spec.decay.days_to_zero or 1) * _DAY)
    else:
        rate = 0.0
    recency = spec.recency
    bands = tuple(sorted((b.within_days * _DAY, b.points) for b in recency.bands)) if recency \
        else ()
    smooth = None
    if recency is not None and recency.max_points is not None and recency.half_life_days:
        smooth = (recency.max_points, math.log(2) / (recency.half_life_days * _DAY))
    return CompiledScoring(
        tuple(c.name for c in spec.categories), tuple(c.cap for c in spec.categories),
        {k: tuple(v) for k, v in by_kind.items()}, spec.decay.kind, rate,
        tuple((r.name, compile_all(r.when), r.points, index[r.category]) for r in spec.profile),
        index[recency.category] if recency else 0, bands, smooth,
        GRADE_RANK[spec.segments.fit_min_grade], spec.segments.intent_min_score,
        spec.segments.names.in_order(),
        tuple(CompiledAlert(a.name, frozenset(a.activity_kinds), compile_all(a.activity_when),
                            compile_all(a.when)) for a in spec.alerts),
        tuple(flat), {k: tuple(v) for k, v in fast.items()},
        {k: (v[0][1], v[0][2], v[0][3]) for k, v in fast.items() if v[0][0] is None}, early_of)


def score(activities: Sequence[Activity], facts: Mapping[str, Any], sc: CompiledScoring,
          now: datetime, cutoff: datetime | None = None, before_cutoff: float = 0.0,
          seen_kinds: set[str] | None = None, created: datetime | None = None) -> ScoreResult:
    """Score one person at ``now``. Activities before ``cutoff`` (a recycle) count
    ``before_cutoff`` times their points (0 = reset). ``created`` (the person's creation)
    places activities in early bands; unknown, every activity earns its rule's points."""
    now_ts = now.timestamp()
    cut_ts = cutoff.timestamp() if cutoff is not None else -math.inf
    created_ts = created.timestamp() if created is not None else None
    totals, counts, last_ts = _activity_points(activities, sc, now_ts, cut_ts, before_cutoff,
                                               seen_kinds, created_ts)
    positive, negative, per_rule = _category_points(sc, totals, counts, facts)
    recency_note = _recency(sc, now_ts, last_ts, positive, per_rule)
    return _total(sc, positive, negative, per_rule, recency_note)


def _activity_points(activities: Sequence[Activity], sc: CompiledScoring, now_ts: float,
                     cut_ts: float, before_cutoff: float, seen_kinds: set[str] | None,
                     created_ts: float | None = None,
                     ) -> tuple[list[float], list[int], float]:
    """Decayed points and counts per activity rule, and the newest scoring activity's time.

    The hot loop of the engine: names are bound to locals and rules pre-indexed by kind."""
    rules_flat = sc.rules
    totals = [0.0] * len(rules_flat)
    counts = [0] * len(rules_flat)
    by_kind = sc.fast_by_kind
    single = sc.unconditional
    mode = 1 if sc.decay_kind == "half_life" else (2 if sc.decay_kind == "linear" else 0)
    # Early bands need a creation time and a rule that has them; without, no look-up at all.
    early_of = sc.early_of if created_ts is not None and sc.early_of else None
    born = created_ts if created_ts is not None else 0.0
    rate = sc.decay_rate
    exp = math.exp
    last_ts = -math.inf
    add_seen = seen_kinds.add if seen_kinds is not None else None
    for activity in activities:
        kind = activity.kind
        if add_seen is not None:
            add_seen(kind)
        entry = single.get(kind)
        if entry is not None:
            points, index, decays = entry
        else:
            candidates = by_kind.get(kind)
            if candidates is None:
                continue
            for test, points, index, decays in candidates:  # noqa: B007 - used after break
                if test is None or test(activity.details):
                    break
            else:
                continue
        ts = activity.occurred_at.timestamp()
        if early_of is not None and index in early_of:
            # Activity logged before the creation (a web visit before the lead) is as early
            # as it gets: it counts in the first band.
            since = ts - born
            for within, band_points, band_index in early_of[index]:
                if since <= within:
                    points, index = band_points, band_index
                    decays = rules_flat[band_index].decays
                    break
        if ts < cut_ts:
            points *= before_cutoff
            if not points:
                continue
        elif points > 0 and ts > last_ts:
            last_ts = ts
        if decays and mode:
            age = now_ts - ts
            if age > 0:
                points *= exp(-rate * age) if mode == 1 else max(0.0, 1.0 - rate * age)
        totals[index] += points
        counts[index] += 1
    return totals, counts, last_ts


def _category_points(sc: CompiledScoring, totals: list[float], counts: list[int],
                     facts: Mapping[str, Any],
                     ) -> tuple[list[float], list[float], dict[str, list[Any]]]:
    """Positive and negative points per category (activity rules, then profile rules), and
    each rule that fired as ``[points, count, category]``."""
    ncat = len(sc.categories)
    positive = [0.0] * ncat
    negative = [0.0] * ncat
    per_rule: dict[str, list[Any]] = {}
    rules = sc.rules
    # the rules that counted an activity, in order, picked in C (most persons hit a few)
    for index in compress(range(len(counts)), counts):
        rule = rules[index]
        points = totals[index]
        if rule.points > 0:
            positive[rule.category] += points
        else:
            negative[rule.category] += points
        per_rule[rule.name] = [points, counts[index], rule.category]
    for name, test, points, cat in sc.profile_rules:
        if test(facts):
            if points >= 0:
                positive[cat] += points
            else:
                negative[cat] += points
            per_rule[name] = [points, 1, cat]
    return positive, negative, per_rule


def _recency(sc: CompiledScoring, now_ts: float, last_ts: float, positive: list[float],
             per_rule: dict[str, list[Any]]) -> str | None:
    if last_ts == -math.inf:
        return None
    age = max(0.0, now_ts - last_ts)
    smooth = sc.recency_smooth
    if smooth is not None:
        points = smooth[0] * math.exp(-smooth[1] * age)
    else:
        for within, points in sc.recency_bands:  # noqa: B007 - used after break
            if age <= within:
                break
        else:
            return None   # older than every band (or no recency section)
    positive[sc.recency_category] += points
    per_rule["recency"] = [points, 1, sc.recency_category]
    days = round(age / _DAY)
    ago = "today" if days == 0 else "1 day ago" if days == 1 else f"{days} days ago"
    return f"recency (last activity {ago}): {round(points, 1):+g}"


def _effect(item: tuple[str, list[Any]]) -> float:
    return -abs(item[1][0])


def _total(sc: CompiledScoring, positive: list[float], negative: list[float],
           per_rule: dict[str, list[Any]], recency_note: str | None) -> ScoreResult:
    total = 0.0
    by_category: dict[str, float] = {}
    capped: list[str] = []
    caps = sc.caps
    names = sc.categories
    for i, pos in enumerate(positive):
        neg = negative[i]
        if not pos and not neg:
            continue
        cap = caps[i]
        if cap is not None and pos > cap:
            pos = cap
            capped.append(f"{names[i]} capped at {cap:g}")
        value = pos + neg
        by_category[names[i]] = round(value, 2)
        total += value
    final = max(0, round(total))  # the floor: interest is never negative
    ranked = sorted(per_rule.items(), key=_effect)[:TOP_CONTRIBUTORS]
    # one loop makes each contribution and its reason (a generator and a second pass cost
    # more than the few items they handle)
    contributors: list[Contribution] = []
    reasons: list[str] = []
    for name, (points, count, category) in ranked:
        shown = round(points, 1)
        contributors.append(Contribution(name, names[category], shown, count))
        if name != "recency":
            reasons.append(f"{name} x{count}: {shown:+g}" if count > 1 else f"{name}: {shown:+g}")
    reasons.extend(capped)
    if recency_note:
        reasons.append(recency_note)
    if total < 0:
        reasons.append("floored at 0")
    return ScoreResult(final, tuple(contributors), by_category, tuple(reasons))


def segment(grade_rank: int, score_value: int, sc: CompiledScoring) -> SegmentResult:
    if type(grade_rank) is not int or type(score_value) is not int:
        return SegmentResult(*_segment_text(grade_rank, score_value, sc))
    # Grades and scores take few values: the texts are kept per (rules, grade, score), the
    # rules by identity (the entry holds them, so their id is not reused while kept). Exact
    # ints only: 2.0 (or True) is the key of 2 (or 1) but reads otherwise.
    key = (id(sc), grade_rank, score_value)
    hit = _SEGMENTS.get(key)
    if hit is None or hit[0] is not sc:
        if len(_SEGMENTS) >= _SEGMENTS_KEPT:
            _SEGMENTS.clear()
        hit = _SEGMENTS[key] = (sc, *_segment_text(grade_rank, score_value, sc))
    return SegmentResult(hit[1], hit[2])   # a new result each time: results are mutable


_SEGMENTS: dict[tuple[int, int, int], tuple[CompiledScoring, str, str]] = {}
_SEGMENTS_KEPT = 4_096


def _segment_text(grade_rank: int, score_value: int, sc: CompiledScoring) -> tuple[str, str]:
    fit = grade_rank >= sc.fit_min_rank
    intent = score_value >= sc.intent_min_score
    name = sc.quadrants[(0 if fit else 2) + (0 if intent else 1)]
    fit_text = (f"grade {GRADES[grade_rank]} {'meets' if fit else 'is below'} "
                f"{GRADES[sc.fit_min_rank]} (fit {'high' if fit else 'low'})")
    intent_text = (f"score {score_value} {'meets' if intent else 'is below'} "
                   f"{sc.intent_min_score:g} (intent {'high' if intent else 'low'})")
    return name, f"{fit_text}; {intent_text}"
