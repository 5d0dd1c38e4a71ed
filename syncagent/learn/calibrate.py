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
    positive: tuple[bool, ...]   # per activity rule: its points are positive (kept sign)
    columns: tuple[Column, ...]
    coef: Floats
    intercept: float
    cv_auc: float
    plain_coef: Floats          # the plain regression on the same features, for comparison
    plain_intercept: float

    def predict(self, ex: Extracted) -> Floats:
        """The fitted log-odds that the rules round to points."""
        return np.asarray(design(ex, self.half_life_days, self.bands) @ self.coef
                          + self.intercept)

    def predict_plain(self, ex: Extracted) -> Floats:
        """The plain logistic regression's log-odds (no sign kept)."""
        return np.asarray(design(ex, self.half_life_days, self.bands) @ self.plain_coef
                          + self.plain_intercept)

    def points(self, ex: Extracted) -> Floats:
        """Integer points per feature: coefficients scaled so the score spreads by about
        POINTS_SPREAD points per standard deviation on the training persons. A rule that
        rounds to 0 keeps the smallest step of its sign (the files refuse a 0-point rule),
        and recency bands give 0 or more, never more to older activity than to newer."""
        spread = float(np.std(self.predict(ex)))
        scale = POINTS_SPREAD / spread if spread > 0 else 1.0
        points = np.rint(self.coef * scale)
        rule_like = np.array([c.kind in ("activity", "profile") for c in self.columns])
        zero = rule_like & (points == 0)
        points[zero] = np.where(_signs(self)[zero] < 0, -1.0, 1.0)
        unseen = _unseen(ex, self.columns)
        points[unseen] = np.nan   # no evidence either way: the proposal keeps its points
        bands = [i for i, c in enumerate(self.columns) if c.kind == "recency"]
        points[bands] = np.maximum(points[bands], 0)   # the files refuse negative recency
        for before, after in itertools.pairwise(bands):
            points[after] = min(points[after], points[before])
        return points


def _signs(fitted: Fitted) -> Floats:
    """+1/-1 per feature: an activity rule's sign as shipped, else the coefficient's."""
    out = np.where(fitted.coef < 0, -1.0, 1.0)
    out[:len(fitted.positive)] = [1.0 if p else -1.0 for p in fitted.positive]
    return out


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


def _fit_signed(x: Floats, y: Bools, positive: Sequence[bool]) -> tuple[Floats, float]:
    """The fit with each activity rule kept to its sign (a rule that earns points never
    becomes a penalty, nor a penalty points): a rule whose coefficient goes the wrong way is
    left out and the rest refitted, until none does. The engine treats a rule by its sign
    (points decay and make activity recent; penalties do neither), so a flipped rule would
    not score as it was fitted."""
    free = np.ones(x.shape[1], dtype=bool)
    sign = np.array([1.0 if p else -1.0 for p in positive])
    while True:
        coef = np.zeros(x.shape[1])
        coef[free], intercept = _fit(x[:, free], y)
        wrong = np.zeros_like(free)
        wrong[:len(sign)] = coef[:len(sign)] * sign < 0
        if not wrong.any():
            return coef, intercept
        free &= ~wrong


def _cv_auc(x: Floats, y: Bools, positive: Sequence[bool], seed: int) -> float:
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    values = []
    for fit_idx, val_idx in folds.split(x, y):
        coef, intercept = _fit_signed(x[fit_idx], y[fit_idx], positive)
        values.append(auc(x[val_idx] @ coef + intercept, y[val_idx]))
    return float(np.mean(values))


def _grid(ex: Extracted, y: Bools, seed: int) -> tuple[float, tuple[float, ...], float]:
    best = (HALF_LIVES[0], BAND_SETS[0], -1.0)
    for half_life in HALF_LIVES:
        for bands in BAND_SETS:
            value = _cv_auc(design(ex, half_life, bands), y, ex.rule_positive, seed)
            if value > best[2]:
                best = (half_life, bands, value)
    return best


def fit_rules(ex: Extracted, y: Bools, seed: int = 0) -> Fitted:
    """Pick the half-life and recency bands by cross-validated AUC, then fit the rules (each
    activity rule keeping its sign) and, for comparison, the plain regression."""
    require_outcomes(y)
    half_life, bands, cv = _grid(ex, y, seed)
    x = design(ex, half_life, bands)
    coef, intercept = _fit_signed(x, y, ex.rule_positive)
    plain, plain_intercept = _fit(x, y)
    return Fitted(half_life, tuple(bands), ex.rule_positive, tuple(columns(ex, bands)), coef,
                  intercept, cv, plain, plain_intercept)


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
