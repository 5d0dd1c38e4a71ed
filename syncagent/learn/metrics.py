"""Ranking and classification figures over numpy arrays (ties count half, as ROC AUC's)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

Floats = NDArray[np.float64]
Bools = NDArray[np.bool_]


def auc(scores: Floats, labels: Bools) -> float:
    """ROC AUC: the chance a random positive outranks a random negative (ties: half).
    NaN when one class is absent, where the figure means nothing."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks: a tie counts half (Mann-Whitney U)
    u = ranks[labels].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))


@dataclass(frozen=True, slots=True)
class Interval:
    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"auc": round(self.value, 4), "ci_low": round(self.low, 4),
                "ci_high": round(self.high, 4)}


def auc_with_ci(scores: Floats, labels: Bools, resamples: int = 500, level: float = 0.95,
                seed: int = 0) -> Interval:
    """AUC with a percentile bootstrap interval (persons resampled with replacement)."""
    value = auc(scores, labels)
    if resamples <= 0 or np.isnan(value):
        return Interval(value, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    n = len(scores)
    draws = [auc(scores[idx], labels[idx])
             for idx in (rng.integers(0, n, n) for _ in range(resamples))]
    kept = np.array([d for d in draws if not np.isnan(d)])
    tail = (1 - level) / 2 * 100
    return Interval(value, float(np.percentile(kept, tail)),
                    float(np.percentile(kept, 100 - tail)))


def precision_recall(predicted: Bools, labels: Bools) -> tuple[float, float]:
    """Precision and recall of a yes/no decision (NaN where undefined)."""
    hits = int((predicted & labels).sum())
    chosen, actual = int(predicted.sum()), int(labels.sum())
    return (hits / chosen if chosen else float("nan"),
            hits / actual if actual else float("nan"))
