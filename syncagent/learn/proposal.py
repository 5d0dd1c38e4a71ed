"""Write a calibrated proposal: a complete mappings folder (a copy of the current one with a
new scoring.yaml and lifecycle.yaml), a diff against the current files, and the report.

The current folder is only read. The proposal must load (``syncagent check``) or it is not
written as a success.
"""

from __future__ import annotations

import difflib
import json
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from syncagent.engine import Rules, load_rules
from syncagent.errors import ConfigError
from syncagent.learn.calibrate import Fitted
from syncagent.learn.metrics import Floats

FIT_CATEGORY = "fit"
CHANGED = ("scoring.yaml", "lifecycle.yaml")


def _grade_rule(step: str, points: int | None) -> dict[str, Any]:
    # A grade step always has data (every person has a grade); 1 point if it had none. A step
    # that rounds to 0 points is left out (the files refuse a 0-point rule).
    spelled = step[0] + {"-": "-minus", "+": "-plus"}.get(step[1:], "")
    return {"name": f"grade-{spelled}-or-better",
            "when": [{"field": "grade", "op": "gte", "value": step}],
            "points": 1 if points is None else points, "category": FIT_CATEGORY}


def _fitted_or_kept(points: int | None, rule: Mapping[str, Any]) -> Any:
    """The fitted points, or the rule's own where no training person earned it."""
    if points is not None:
        return points
    kept = rule["points"]
    return int(kept) if float(kept).is_integer() else kept


def _early(rule: dict[str, Any], extra: int | None, days: float | None) -> None:
    """The rule's fitted early band (its own points plus what the band adds), replacing any
    it had; none when the window adds nothing or the rule kept its points unfitted."""
    rule.pop("early", None)
    if days is None or not extra or not isinstance(rule["points"], int) or rule["points"] <= 0:
        return
    rule["early"] = [{"within_days_of_creation": days,
                      "points": max(1, rule["points"] + extra)}]


def _recency(rules: Rules, fitted: Fitted, by_column: Mapping[tuple[str, str], int | None]
             ) -> dict[str, Any] | None:
    category = rules.scoring.recency.category if rules.scoring.recency else FIT_CATEGORY
    if fitted.recency.half_life_days is not None:
        most = by_column[("recency", "smooth")]
        if not most:   # recency says nothing here: no section (max_points must be above 0)
            return None
        return {"category": category, "max_points": most,
                "half_life_days": fitted.recency.half_life_days}
    return {"category": category, "bands": [
        {"within_days": float(b), "points": by_column[("recency", f"{b:g}")]}
        for b in fitted.recency.bands]}


def scoring_document(rules: Rules, fitted: Fitted, points: Floats) -> dict[str, Any]:
    """The current scoring file with the fitted points, half-life, recency form and early
    bands.

    Caps go: the fitted model adds points without a ceiling, and a cap would bend it."""
    doc = {"version": 1, **rules.scoring.model_dump(mode="json", exclude_defaults=True)}
    by_column = {(c.kind, c.name): None if np.isnan(p) else int(p)
                 for c, p in zip(fitted.columns, points, strict=True)}
    doc["categories"] = [{"name": c.name} for c in rules.scoring.categories]
    if FIT_CATEGORY not in {c.name for c in rules.scoring.categories}:
        doc["categories"].append({"name": FIT_CATEGORY})
    doc = {**doc, "decay": {"kind": "half_life", "half_life_days": fitted.half_life_days}}
    for rule in doc["activities"]:   # each keeps its sign and its decays setting
        rule["points"] = _fitted_or_kept(by_column[("activity", rule["name"])], rule)
        _early(rule, by_column.get(("early", rule["name"])), fitted.early_days)
    for rule in doc.get("profile", []):
        rule["points"] = _fitted_or_kept(by_column[("profile", rule["name"])], rule)
    doc["profile"] = [*doc.get("profile", []),
                      *(_grade_rule(c.name, by_column[("grade", c.name)])
                        for c in fitted.columns
                        if c.kind == "grade" and by_column[("grade", c.name)])]
    recency = _recency(rules, fitted, by_column)
    if recency is None:
        doc.pop("recency", None)
    else:
        doc["recency"] = recency
    order = ("version", "categories", "decay", "activities", "profile", "recency")
    return {**{k: doc[k] for k in order if k in doc}, **doc}


def lifecycle_document(rules: Rules, threshold: float) -> dict[str, Any]:
    """The current lifecycle file with an MQL on the calibrated score alone (the score now
    carries the fit through its grade rules)."""
    doc = {"version": 1, **rules.lifecycle.model_dump(mode="json", exclude_defaults=True)}
    doc.setdefault("mql", {})
    doc["mql"]["policy"] = "score"
    doc["mql"]["min_score"] = max(0, int(threshold))
    return doc


def _yaml_text(name: str, doc: Mapping[str, Any], note: str) -> str:
    head = (f"# yaml-language-server: $schema=./schema/{name.replace('.yaml', '.schema.json')}\n"
            f"# {note}\n")
    return head + yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=100)


def _prepare(out: Path, current: Path) -> None:
    if out.resolve() == current.resolve():
        raise ConfigError(f"--out {out} is the mappings folder in use; calibrate never "
                          "overwrites the live mappings",
                          hint="Give a new folder, e.g. --out mappings-proposed.")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty",
                          hint="Give a new or empty folder, so no earlier proposal is mixed in.")
    try:
        shutil.copytree(current, out, dirs_exist_ok=True)
    except OSError as error:
        raise ConfigError(f"cannot write the proposal to {out}: {error.strerror}",
                          hint="Pick a folder you can write to with --out.") from None


def write_proposal(out: Path, current: Path, documents: Mapping[str, Any],
                   note: str) -> Rules:
    """Copy the current folder to ``out``, write the changed files and the diff; return the
    proposal loaded as the agent would load it (which also checks it)."""
    _prepare(out, current)
    diff: list[str] = []
    for name in CHANGED:
        old = (current / name).read_text(encoding="utf-8")
        new = _yaml_text(name, documents[name], note)
        (out / name).write_text(new, encoding="utf-8")
        diff += difflib.unified_diff(old.splitlines(keepends=True),
                                     new.splitlines(keepends=True),
                                     f"current/{name}", f"proposed/{name}")
    (out / "calibration.diff").write_text("".join(diff), encoding="utf-8")
    return load_rules(out)


def write_report(out: Path, report: Mapping[str, Any]) -> None:
    (out / "calibration.json").write_text(
        json.dumps(report, indent=2, default=_plain) + "\n", encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    raise TypeError(type(value).__name__)
