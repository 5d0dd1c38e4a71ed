"""The calibrate command's steps: split, extract, fit, round, set the threshold, write the
proposal, and backtest the current and the proposed rules on the held-out persons."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from syncagent.engine import Rules
from syncagent.learn.backtest import report, score_persons
from syncagent.learn.calibrate import (
    Fitted,
    fit_rules,
    require_outcomes,
    split,
    threshold_for_precision,
    threshold_for_rate,
)
from syncagent.learn.features import extract
from syncagent.learn.metrics import auc
from syncagent.learn.persons import LabelledPerson
from syncagent.learn.proposal import (
    lifecycle_document,
    scoring_document,
    write_proposal,
    write_report,
)

MIN_DEFAULT_RATE = 0.001   # below one MQL per 1,000 persons, today's rate is no target


@dataclass(frozen=True)
class Targets:
    """At most one of the two; neither keeps the current rules' MQL rate."""

    mql_rate: float | None = None
    precision: float | None = None


def _labels(persons: Sequence[LabelledPerson]) -> np.ndarray:
    return np.array([p.outcome for p in persons], dtype=bool)


def _threshold(train: Sequence[LabelledPerson], proposed: Rules, current: Rules,
               targets: Targets) -> tuple[float, dict[str, Any]]:
    scored = score_persons(train, proposed)
    if targets.precision is not None:
        value = threshold_for_precision(scored.score, scored.outcome, targets.precision)
        return value, {"target_precision": targets.precision}
    rate = targets.mql_rate
    why: dict[str, Any] = {"target_mql_rate": rate}
    if rate is None:
        rate = float(score_persons(train, current).mql.mean())
        why = {"target_mql_rate": round(rate, 4), "from": "the current rules' MQL rate"}
        if rate < MIN_DEFAULT_RATE:   # hardly an MQL today: as many MQLs as outcomes
            rate = float(scored.outcome.mean())
            why = {"target_mql_rate": round(rate, 4), "from": "the outcome rate (the current "
                   "rules make almost no MQL at these snapshots)"}
    return threshold_for_rate(scored.score, rate), why


@dataclass(frozen=True)
class Proposal:
    """Fitted rules, loaded from the folder they were written to, and how they were set."""

    rules: Rules
    fitted: Fitted
    points: np.ndarray
    threshold: float
    why: dict[str, Any]


def propose(train: Sequence[LabelledPerson], rules: Rules, current_dir: Path, out: Path,
            targets: Targets, seed: int = 0) -> Proposal:
    """Fit on ``train`` and write the proposed folder to ``out`` (diff included)."""
    require_outcomes(_labels(train))
    train_ex = extract(train, rules)
    fitted = fit_rules(train_ex, _labels(train), seed)
    points = fitted.points(train_ex)
    note = (f"Proposed by `syncagent calibrate` from {len(train)} persons "
            f"(half-life {fitted.half_life_days:g} days); review calibration.diff.")
    documents = {"scoring.yaml": scoring_document(rules, fitted, points),
                 "lifecycle.yaml": lifecycle_document(rules, 0)}
    with tempfile.TemporaryDirectory() as scratch:  # the score does not need the threshold
        draft = write_proposal(Path(scratch) / "draft", current_dir, documents, note)
        threshold, why = _threshold(train, draft, rules, targets)
    documents["lifecycle.yaml"] = lifecycle_document(rules, threshold)
    proposed = write_proposal(out, current_dir, documents, note)
    return Proposal(proposed, fitted, points, threshold, why)


def calibrate(persons: Sequence[LabelledPerson], rules: Rules, current_dir: Path, out: Path,
              targets: Targets, *, test_share: float = 0.25, seed: int = 0,
              resamples: int = 500) -> dict[str, Any]:
    """Fit on a training split, write the proposal to ``out``, report both on the rest."""
    require_outcomes(_labels(persons))
    train_at, test_at = split(len(persons), test_share, seed)
    train = [persons[int(i)] for i in train_at]
    test = [persons[int(i)] for i in test_at]
    made = propose(train, rules, current_dir, out, targets, seed)
    lr_auc = auc(made.fitted.predict_plain(extract(test, rules)), _labels(test))
    result = {
        "persons": {"train": len(train), "test": len(test),
                    "train_outcomes": int(_labels(train).sum()),
                    "test_outcomes": int(_labels(test).sum())},
        "chosen": {"half_life_days": made.fitted.half_life_days,
                   "recency": made.fitted.recency.describe(),
                   "early_days": made.fitted.early_days, "cv_auc": round(made.fitted.cv_auc, 4),
                   "mql_min_score": made.threshold, **made.why},
        "points": {f"{c.kind}:{c.name}": None if np.isnan(p) else int(p)
                   for c, p in zip(made.fitted.columns, made.points, strict=True)},
        "held_out": {"current": report(score_persons(test, rules), resamples, seed),
                     "proposed": report(score_persons(test, made.rules), resamples, seed),
                     "logistic_regression_auc": round(lr_auc, 4)},
    }
    write_report(out, result)
    return result
