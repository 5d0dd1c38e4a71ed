"""Calibrate: fit the scoring rules to the outcomes, as points per rule an admin can read.

A regularised logistic regression over the engine's own features (``features.py``) picks the
decay half-life and the recency bands from a small grid by cross-validated AUC; its
coefficients, scaled, become integer points per rule; the MQL threshold is set for a target
MQL rate or precision. The caller writes the proposal (``proposal.py``) and backtests it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from syncagent.errors import ConfigError
from syncagent.learn.features import Column, Extracted, columns, design
from syncagent.learn.metrics import Bools, Floats, auc

MIN_OUTCOMES = 50        # fewer positives (or negatives) than this and the fit is noise
HALF_LIVES = (7.0, 14.0, 30.0, 60.0, 120.0)
BAND_SETS: tuple[tuple[float, ...], ...] = ((3, 14, 30), (1, 7, 30), (7, 30, 90),
                                            (1, 3, 7, 14, 30, 60))
POINTS_SPREAD = 40.0     # one standard deviation of the fitted score, in points
REGULARISATION = 1.0     # sklearn's C: smaller is stronger


@dataclass(frozen=True)
class Fitted:
    """The chosen tuning and the fitted model on the original (unscaled) features."""

    half_life_days: float
    bands: tuple[float, ...]
    decays: tuple[bool, ...]
    columns: tuple[Column, ...]
    coef: Floats
    intercept: float
    cv_auc: float

    def predict(self, ex: Extracted) -> Floats:
        """The plain logistic regression's log-odds (the float model the rules round)."""
        return np.asarray(design(ex, self.half_life_days, self.bands, self.decays) @ self.coef
                          + self.intercept)

    def points(self, ex: Extracted) -> Floats:
        """Integer points per feature: coefficients scaled so the score spreads by about
        POINTS_SPREAD points per standard deviation on the training persons. A rule that
        rounds to 0 keeps the smallest step of its sign (the files refuse a 0-point rule),
        and recency bands never give older activity more than newer."""
        spread = float(np.std(self.predict(ex)))
        scale = POINTS_SPREAD / spread if spread > 0 else 1.0
        points = np.rint(self.coef * scale)
        rule_like = np.array([c.kind in ("activity", "profile") for c in self.columns])
        zero = rule_like & (points == 0)
        points[zero] = np.where(self.coef[zero] < 0, -1.0, 1.0)
        unseen = _unseen(ex, self.columns)
        points[unseen] = np.nan   # no evidence either way: the proposal keeps its points
        bands = [i for i, c in enumerate(self.columns) if c.kind == "recency"]
        for before, after in itertools.pairwise(bands):
            points[after] = min(points[after], points[before])
        return points


def _unseen(ex: Extracted, cols: Sequence[Column]) -> Bools:
    """Activity and profile rules that no training person earned."""
    activity_hits = np.bincount(ex.hit_rule, minlength=len(ex.rule_names))
    profile_hits = ex.profile_hits.sum(axis=0)
    return np.array([(c.kind == "activity" and activity_hits[c.index] == 0)
                     or (c.kind == "profile" and profile_hits[c.index] == 0) for c in cols])


def require_outcomes(labels: Bools, needed: int = MIN_OUTCOMES) -> None:
    """Refuse a fit on too few outcomes, saying how many there are and are needed."""
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives < needed or negatives < needed:
        raise ConfigError(
            f"too few outcomes to calibrate: {positives} positive and {negatives} negative "
            f"persons; calibration needs at least {needed} of each",
            hint="Export a longer history (more persons, or a longer --within-days window), "
                 "or pick a more frequent --outcome such as sql.")


def _fit(x: Floats, y: Bools) -> tuple[Floats, float]:
    """Coefficients on the original feature scale, and the intercept."""
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=REGULARISATION, max_iter=2000).fit(scaler.transform(x), y)
    coef = model.coef_[0] / scaler.scale_
    intercept = float(model.intercept_[0] - (coef * scaler.mean_).sum())
    return coef, intercept


def _cv_auc(x: Floats, y: Bools, seed: int) -> float:
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    values = []
    for fit_idx, val_idx in folds.split(x, y):
        coef, intercept = _fit(x[fit_idx], y[fit_idx])
        values.append(auc(x[val_idx] @ coef + intercept, y[val_idx]))
    return float(np.mean(values))


def _grid(ex: Extracted, y: Bools, seed: int) -> tuple[float, tuple[float, ...], float]:
    best = (HALF_LIVES[0], BAND_SETS[0], -1.0)
    for half_life in HALF_LIVES:
        for bands in BAND_SETS:
            value = _cv_auc(design(ex, half_life, bands), y, seed)
            if value > best[2]:
                best = (half_life, bands, value)
    return best


def fit_rules(ex: Extracted, y: Bools, seed: int = 0) -> Fitted:
    """Pick the tuning, then fit. A rule whose fitted sign differs from its shipped one is
    refitted with the engine's treatment of that sign (points decay; penalties do not)."""
    require_outcomes(y)
    half_life, bands, cv = _grid(ex, y, seed)
    decays = ex.rule_positive
    coef, intercept = _fit(design(ex, half_life, bands, decays), y)
    flipped = tuple(bool(c > 0) for c in coef[:len(decays)])
    if flipped != decays:
        decays = flipped
        coef, intercept = _fit(design(ex, half_life, bands, decays), y)
    return Fitted(half_life, tuple(bands), decays, tuple(columns(ex, bands)), coef, intercept,
                  cv)


def threshold_for_rate(scores: Floats, rate: float) -> float:
    """The lowest integer score at which at most ``rate`` of the persons qualify."""
    for value in np.unique(scores):
        if float(np.mean(scores >= value)) <= rate:
            return float(value)
    return float(np.max(scores)) + 1


def threshold_for_precision(scores: Floats, labels: Bools, precision: float) -> float:
    """The lowest integer score whose qualifiers reach ``precision`` (refuses if none)."""
    for value in np.unique(scores):
        chosen = scores >= value
        if chosen.any() and float(labels[chosen].mean()) >= precision:
            return float(value)
    raise ConfigError(f"no MQL threshold reaches a precision of {precision:g} on the "
                      "training persons",
                      hint="Ask for a lower --target-precision, or use --target-mql-rate.")


def split(n: int, test_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random split of person positions into training and held-out test."""
    order = np.random.default_rng(seed).permutation(n)
    cut = round(n * (1 - test_share))
    return np.sort(order[:cut]), np.sort(order[cut:])


def take(items: Sequence[object], positions: np.ndarray) -> list[object]:
    return [items[int(i)] for i in positions]
