"""Calibrate: fit the scoring rules to the outcomes, as points per rule an admin can read.

A regularised logistic regression over the engine's own features (``features.py``) picks the
decay half-life and the recency form (bands, or a smooth fade) from a small grid by
cross-validated AUC, then whether key events earn more soon after the person's creation (an
early window, kept only when it raises that AUC); its coefficients, scaled, become integer
points per rule; the MQL threshold is set for a target MQL rate or precision. The caller
writes the proposal (``proposal.py``) and backtests it.
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
from syncagent.learn.features import Column, Extracted, RecencyForm, columns, design
from syncagent.learn.metrics import Bools, Floats, auc

MIN_OUTCOMES = 50        # fewer positives (or negatives) than this and the fit is noise
HALF_LIVES = (7.0, 14.0, 30.0, 60.0, 120.0)
BAND_SETS: tuple[tuple[float, ...], ...] = ((3, 14, 30), (1, 7, 30), (7, 30, 90),
                                            (1, 3, 7, 14, 30, 60))
RECENCY_HALF_LIVES = (2.0, 4.0, 8.0, 16.0)     # the smooth form's candidates, in days
RECENCY_FORMS = (*(RecencyForm(bands=b) for b in BAND_SETS),
                 *(RecencyForm(half_life_days=h) for h in RECENCY_HALF_LIVES))
EARLY_WINDOWS = (7.0, 14.0, 30.0)             # days since creation an early band may cover
EARLY_GAIN = 0.002       # an early window must raise the cross-validated AUC by this much
POINTS_SPREAD = 40.0     # one standard deviation of the fitted score, in points
REGULARISATION = 1.0     # sklearn's C: smaller is stronger


@dataclass(frozen=True)
class Fitted:
    """The chosen tuning and the fitted model on the original (unscaled) features."""

    half_life_days: float
    recency: RecencyForm
    early_days: float | None     # the early window fitted, or None (no early bands)
    positive: tuple[bool, ...]   # per activity rule: its points are positive (kept sign)
    columns: tuple[Column, ...]
    coef: Floats
    intercept: float
    cv_auc: float
    plain_coef: Floats          # the plain regression on the same features, for comparison
    plain_intercept: float

    def predict(self, ex: Extracted) -> Floats:
        """The fitted log-odds that the rules round to points."""
        return np.asarray(self.matrix(ex) @ self.coef + self.intercept)

    def matrix(self, ex: Extracted) -> Floats:
        """The persons' features under the chosen tuning."""
        return design(ex, self.half_life_days, self.recency, self.early_days)

    def predict_plain(self, ex: Extracted) -> Floats:
        """The plain logistic regression's log-odds (no sign kept)."""
        return np.asarray(self.matrix(ex) @ self.plain_coef + self.plain_intercept)

    def points(self, ex: Extracted) -> Floats:
        """Integer points per feature: coefficients scaled so the score spreads by about
        POINTS_SPREAD points per standard deviation on the training persons. A rule that
        rounds to 0 keeps the smallest step of its sign (the files refuse a 0-point rule),
        and recency gives 0 or more, never more to older activity than to newer. An early
        column's points are what the band adds to its rule's own points."""
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
    return np.array([(c.kind in ("activity", "early") and activity_hits[c.index] == 0)
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


def _grid(ex: Extracted, y: Bools, seed: int) -> tuple[float, RecencyForm, float]:
    best = (HALF_LIVES[0], RECENCY_FORMS[0], -1.0)
    for half_life in HALF_LIVES:
        for form in RECENCY_FORMS:
            value = _cv_auc(design(ex, half_life, form), y, ex.rule_positive, seed)
            if value > best[2]:
                best = (half_life, form, value)
    return best


def _early_window(ex: Extracted, y: Bools, half_life: float, form: RecencyForm, cv: float,
                  seed: int) -> tuple[float | None, float]:
    """The early window that raises the cross-validated AUC most (by at least EARLY_GAIN),
    or None: early bands are written only where the history says they help."""
    known = ~np.isnan(ex.hit_since_creation_days)
    if not ex.early_rules() or not known.any():
        return None, cv
    best: tuple[float | None, float] = (None, cv)
    for days in EARLY_WINDOWS:
        value = _cv_auc(design(ex, half_life, form, days), y, ex.rule_positive, seed)
        if value > best[1] + (EARLY_GAIN if best[0] is None else 0):
            best = (days, value)
    return best


def fit_rules(ex: Extracted, y: Bools, seed: int = 0) -> Fitted:
    """Pick the half-life, the recency form and the early window by cross-validated AUC,
    then fit the rules (each activity rule keeping its sign) and, for comparison, the plain
    regression."""
    require_outcomes(y)
    half_life, form, cv = _grid(ex, y, seed)
    early, cv = _early_window(ex, y, half_life, form, cv, seed)
    x = design(ex, half_life, form, early)
    coef, intercept = _fit_signed(x, y, ex.rule_positive)
    plain, plain_intercept = _fit(x, y)
    return Fitted(half_life, form, early, ex.rule_positive, tuple(columns(ex, form, early)),
                  coef, intercept, cv, plain, plain_intercept)


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
