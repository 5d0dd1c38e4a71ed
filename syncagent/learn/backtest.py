"""Backtest: evaluate each person at its snapshot with given rules, and measure how well the
score, the grade and the MQL decision predicted the outcome that followed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from syncagent.engine import Rules, evaluate
from syncagent.engine.model import STAGE_RANK
from syncagent.engine.operators import GRADES
from syncagent.learn.metrics import Bools, Floats, auc_with_ci, precision_recall
from syncagent.learn.persons import LabelledPerson

SCORE_BANDS = (0, 25, 50, 100, 150, 200)   # lower bounds of the score bands reported


@dataclass(frozen=True)
class Scored:
    """Each person's score, grade rank and MQL decision under one set of rules."""

    score: Floats
    grade_rank: Floats
    mql: Bools
    outcome: Bools


def score_persons(persons: Sequence[LabelledPerson], rules: Rules) -> Scored:
    """Evaluate every person at its own snapshot time (pure, no state carried between)."""
    n = len(persons)
    score, rank = np.zeros(n), np.zeros(n)
    mql = np.zeros(n, dtype=bool)
    mql_rank = STAGE_RANK["MQL"]
    for i, item in enumerate(persons):
        decision, _ = evaluate(item.person, rules, item.at)
        score[i] = decision.score.score
        rank[i] = GRADES.index(decision.grade.grade)
        # Reaching MQL or beyond at the snapshot is the MQL decision (side stages rank low).
        mql[i] = STAGE_RANK[decision.stage.stage] >= mql_rank
    outcome = np.array([p.outcome for p in persons], dtype=bool)
    return Scored(score, rank, mql, outcome)


def _rate(labels: Bools, where: Bools) -> dict[str, Any]:
    count = int(where.sum())
    return {"persons": count, "outcomes": int(labels[where].sum()),
            "rate": round(float(labels[where].mean()), 4) if count else None}


def _by_grade(s: Scored) -> dict[str, Any]:
    return {GRADES[int(r)]: _rate(s.outcome, s.grade_rank == r)
            for r in sorted(set(s.grade_rank.tolist()), reverse=True)}


def _by_band(s: Scored) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, low in enumerate(SCORE_BANDS):
        high = SCORE_BANDS[i + 1] if i + 1 < len(SCORE_BANDS) else None
        where = (s.score >= low) & (s.score < high if high is not None else True)
        out[f"{low}-{high - 1}" if high is not None else f"{low}+"] = _rate(s.outcome, where)
    return out


def report(s: Scored, resamples: int = 500, seed: int = 0) -> dict[str, Any]:
    """The backtest's figures (JSON-ready)."""
    precision, recall = precision_recall(s.mql, s.outcome)
    n = len(s.outcome)
    return {
        "persons": n, "outcomes": int(s.outcome.sum()),
        "base_rate": round(float(s.outcome.mean()), 4) if n else None,
        "auc": {"score": auc_with_ci(s.score, s.outcome, resamples, seed=seed).as_dict(),
                "grade": auc_with_ci(s.grade_rank, s.outcome, resamples, seed=seed).as_dict(),
                "mql": auc_with_ci(s.mql.astype(float), s.outcome, resamples,
                                   seed=seed).as_dict()},
        "mql": {"count": int(s.mql.sum()), "per_1000": round(1000 * float(s.mql.mean()), 1),
                "precision": _round(precision), "recall": _round(recall)},
        "by_grade": _by_grade(s),
        "by_score_band": _by_band(s),
    }


def _round(value: float) -> float | None:
    return None if value != value else round(value, 4)  # NaN -> null in JSON


def backtest(persons: Sequence[LabelledPerson], rules: Rules, resamples: int = 500
             ) -> dict[str, Any]:
    """Evaluate and report in one call."""
    return report(score_persons(persons, rules), resamples)
