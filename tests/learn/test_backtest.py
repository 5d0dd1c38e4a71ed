"""Backtest: every figure the issue asks for, consistent with the persons it was given."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from syncagent.cli import app
from syncagent.engine import Rules
from syncagent.learn.backtest import backtest
from syncagent.learn.persons import LabelledPerson
from tests.learn.conftest import SHIPPED
from tests.learn.world import write_world


def test_figures_add_up_to_the_persons_given(rules: Rules,
                                             world: list[LabelledPerson]) -> None:
    f = backtest(world, rules, resamples=50)
    n, positives = len(world), sum(p.outcome for p in world)
    assert (f["persons"], f["outcomes"]) == (n, positives)
    for key in ("by_grade", "by_score_band"):
        rows = f[key].values()
        assert sum(r["persons"] for r in rows) == n
        assert sum(r["outcomes"] for r in rows) == positives
    assert f["mql"]["per_1000"] == round(1000 * f["mql"]["count"] / n, 1)
    for what in ("score", "grade", "mql"):
        a = f["auc"][what]
        assert a["ci_low"] <= a["auc"] <= a["ci_high"]
    # the synthetic outcome follows fit and activity: the shipped score sees some of it
    assert f["auc"]["score"]["auc"] > 0.6


def test_an_outcome_unrelated_to_anything_gives_an_auc_near_a_half(tmp_path: Path,
                                                                   rules: Rules) -> None:
    from syncagent.learn.persons import read_persons

    noise = read_persons(write_world(tmp_path / "n.jsonl", 2000, seed=8, strength=0.0), rules)
    f = backtest(noise, rules, resamples=100)
    assert f["auc"]["score"]["ci_low"] < 0.5 < f["auc"]["score"]["ci_high"] or \
        abs(f["auc"]["score"]["auc"] - 0.5) < 0.04


def test_the_cli_prints_json(world_file: Path) -> None:
    run = CliRunner().invoke(app, ["backtest", "--persons", str(world_file), "--mappings",
                                   str(SHIPPED), "--json", "--bootstrap", "20"])
    assert run.exit_code == 0, run.output
    figures = json.loads(run.output)
    assert set(figures["auc"]) == {"score", "grade", "mql"}
    assert {"precision", "recall", "per_1000"} <= set(figures["mql"])
