"""AUC as the chance a positive outranks a negative, checked against sklearn and by hand."""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import roc_auc_score

from syncagent.learn.metrics import auc, auc_with_ci, precision_recall


def test_auc_counts_ties_half_and_agrees_with_sklearn() -> None:
    rng = np.random.default_rng(5)
    scores = rng.integers(0, 6, 800).astype(float)   # many ties
    labels = rng.random(800) < 0.1 + scores / 10
    assert math.isclose(auc(scores, labels), roc_auc_score(labels, scores), abs_tol=1e-12)
    # by hand: one positive tied with one negative, above another negative -> (0.5 + 1) / 2
    assert auc(np.array([1.0, 1.0, 0.0]), np.array([True, False, False])) == 0.75


def test_auc_of_one_class_is_not_a_number_not_a_crash() -> None:
    assert math.isnan(auc(np.array([1.0, 2.0]), np.array([True, True])))
    interval = auc_with_ci(np.array([1.0, 2.0]), np.array([False, False]), resamples=10)
    assert math.isnan(interval.low)


def test_bootstrap_interval_holds_the_value_and_narrows_with_more_persons() -> None:
    rng = np.random.default_rng(9)
    widths = []
    for n in (300, 3000):
        scores = rng.normal(size=n)
        labels = rng.random(n) < 1 / (1 + np.exp(-scores))
        ci = auc_with_ci(scores, labels, resamples=200, seed=1)
        assert ci.low <= ci.value <= ci.high
        widths.append(ci.high - ci.low)
    assert widths[1] < widths[0]


def test_precision_and_recall() -> None:
    predicted = np.array([True, True, False, False, True])
    labels = np.array([True, False, True, False, True])
    assert precision_recall(predicted, labels) == (2 / 3, 2 / 3)
    p, r = precision_recall(np.zeros(3, dtype=bool), np.array([True, False, False]))
    assert math.isnan(p) and r == 0.0
