"""CLI commands that learn from the org's own outcomes: export-persons, backtest, calibrate.
Registered by syncagent.cli; backtest and calibrate need the ``learn`` extra."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import typer

from syncagent.commands.common import ConfigOption, StateOption, settings_for_command
from syncagent.commands.engine import MappingsOption, _mappings_in_use, _parse_now
from syncagent.engine import Rules, load_rules
from syncagent.errors import ConfigError
from syncagent.learn.persons import LabelledPerson, read_persons, write_persons

OUTCOMES = ("sql", "opportunity", "won")
AsOfOption = typer.Option(30.0, "--as-of-days", min=0,
                          help="Each person as they stood this many days after creation.")
OutcomeOption = typer.Option("sql", "--outcome",
                             help="What counts as success: sql, opportunity or won.")
WithinOption = typer.Option(90.0, "--within-days", min=0.001,
                            help="The outcome must follow the snapshot within this many days.")
NowOption = typer.Option(None, "--now", help="The export's present, ISO (default: now); "
                         "persons whose window ends later are left out.")
PersonsOption = typer.Option(None, "--persons", dir_okay=False,
                             help="Persons file (JSON Lines); default: exported from the "
                             "state DB as export-persons does.")
ResamplesOption = typer.Option(500, "--bootstrap", min=0,
                               help="Bootstrap resamples for each AUC's 95% interval.")


def _learn_modules() -> None:
    """The learn extra brings numpy and scikit-learn; say how to get it, not a traceback."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("backtest and calibrate need scikit-learn, which is not installed",
                          hint="pip install 'syncagent[learn]'") from None


def _exported(rules: Rules, config: Path | None, state: str | None, as_of: float,
              outcome: str, within: float, now: str | None) -> tuple[list[dict[str, Any]], Any]:
    from state.store import StateStore
    from syncagent.learn.export import ExportSpec, ExportTally, export_persons

    if outcome not in OUTCOMES:
        raise ConfigError(f"--outcome {outcome!r} is not one of {', '.join(OUTCOMES)}",
                          hint="e.g. --outcome sql")
    settings = settings_for_command(config, state)
    store = StateStore(settings.state_url)
    try:
        store.require_schema()
        spec = ExportSpec(as_of, outcome,  # type: ignore[arg-type]  # checked above
                          within, _parse_now(now) if now else datetime.now(UTC))
        tally = ExportTally()
        docs = list(export_persons(store, rules, spec, tally))
    finally:
        store.dispose()
    return docs, tally


def _tally_line(tally: Any) -> str:
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(tally.skipped.items()))
    return (f"{tally.written} persons ({tally.positives} with the outcome)"
            + (f"; left out: {skipped}" if skipped else ""))


@contextmanager
def _output(out: Path | None) -> Iterator[TextIO]:
    if out is None:
        yield sys.stdout
        return
    try:
        with out.open("w", encoding="utf-8") as handle:
            yield handle
    except OSError as error:
        raise ConfigError(f"cannot write {out}: {error.strerror}",
                          hint="Pick a file you can write with --out.") from None


def export_persons_command(
    out: Path | None = typer.Option(None, "--out", dir_okay=False,
                                    help="File to write (default: standard output)."),
    as_of_days: float = AsOfOption, outcome: str = OutcomeOption,
    within_days: float = WithinOption, now: str | None = NowOption,
    mappings: Path | None = MappingsOption, config: Path | None = ConfigOption,
    state: str | None = StateOption,
) -> None:
    """Write the persons file (JSON Lines) from the state DB's history."""
    rules = load_rules(_mappings_in_use(mappings))
    docs, tally = _exported(rules, config, state, as_of_days, outcome, within_days, now)
    with _output(out) as handle:
        write_persons(docs, handle)
    typer.echo(f"exported {_tally_line(tally)}", err=True)


def _persons(persons: Path | None, rules: Rules, config: Path | None, state: str | None,
             as_of: float, outcome: str, within: float, now: str | None
             ) -> list[LabelledPerson]:
    if persons is not None:
        return read_persons(persons, rules)
    from syncagent.engine.person_file import parse_person

    docs, tally = _exported(rules, config, state, as_of, outcome, within, now)
    typer.echo(f"from the state DB: {_tally_line(tally)}", err=True)
    if not docs:
        raise ConfigError("the state DB has no person to learn from (see the counts above)",
                          hint="Sync more history, or lower --as-of-days / --within-days.")
    out = []
    for doc in docs:
        person, at, _r, _u = parse_person(doc, rules, f"person {doc['person_id']}")
        out.append(LabelledPerson(person, at, bool(doc["outcome"])))
    return out


def backtest_command(
    persons: Path | None = PersonsOption, mappings: Path | None = MappingsOption,
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    bootstrap: int = ResamplesOption,
    as_of_days: float = AsOfOption, outcome: str = OutcomeOption,
    within_days: float = WithinOption, now: str | None = NowOption,
    config: Path | None = ConfigOption, state: str | None = StateOption,
) -> None:
    """Evaluate every person at its snapshot and measure the rules against the outcomes."""
    _learn_modules()
    from syncagent.learn.backtest import backtest

    rules = load_rules(_mappings_in_use(mappings))
    found = _persons(persons, rules, config, state, as_of_days, outcome, within_days, now)
    figures = backtest(found, rules, bootstrap)
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    _print_backtest(figures)


def _auc_text(item: dict[str, float]) -> str:
    if math.isnan(item["auc"]):
        return "n/a (one class only)"
    return f"{item['auc']:.3f} (95% CI {item['ci_low']:.3f}-{item['ci_high']:.3f})"


def _print_backtest(f: dict[str, Any]) -> None:
    typer.echo(f"{f['persons']} persons, {f['outcomes']} with the outcome "
               f"(base rate {f['base_rate']:.1%})")
    for what in ("score", "grade", "mql"):
        typer.echo(f"  AUC of the {what:<5}: {_auc_text(f['auc'][what])}")
    m = f["mql"]
    typer.echo(f"  MQLs: {m['count']} ({m['per_1000']:g} per 1,000); precision "
               f"{m['precision']}, recall {m['recall']}")
    for title, key in (("by grade", "by_grade"), ("by score band", "by_score_band")):
        typer.echo(f"  conversion {title}:")
        for name, row in f[key].items():
            rate = "-" if row["rate"] is None else f"{row['rate']:.1%}"
            typer.echo(f"    {name:>8}: {rate:>6} of {row['persons']}")


def calibrate_command(
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="New folder for the proposed mappings (never the live one)."),
    persons: Path | None = PersonsOption, mappings: Path | None = MappingsOption,
    target_mql_rate: float | None = typer.Option(
        None, "--target-mql-rate", min=0.0001, max=1.0,
        help="Share of persons that should be MQLs, e.g. 0.05 (default: today's rate)."),
    target_precision: float | None = typer.Option(
        None, "--target-precision", min=0.0001, max=1.0,
        help="Share of MQLs that should reach the outcome, e.g. 0.4."),
    bootstrap: int = ResamplesOption,
    seed: int = typer.Option(0, "--seed", help="Seed of the train/held-out split."),
    as_of_days: float = AsOfOption, outcome: str = OutcomeOption,
    within_days: float = WithinOption, now: str | None = NowOption,
    config: Path | None = ConfigOption, state: str | None = StateOption,
) -> None:
    """Fit the scoring rules to the outcomes and write a proposed mappings folder."""
    _learn_modules()
    from syncagent.learn.workflow import Targets, calibrate

    if target_mql_rate is not None and target_precision is not None:
        raise ConfigError("give at most one of --target-mql-rate and --target-precision",
                          hint="The MQL threshold is set for one target.")
    current = _mappings_in_use(mappings)
    rules = load_rules(current)
    found = _persons(persons, rules, config, state, as_of_days, outcome, within_days, now)
    result = calibrate(found, rules, current, out, Targets(target_mql_rate, target_precision),
                       seed=seed, resamples=bootstrap)
    held = result["held_out"]
    typer.echo(f"wrote {out} (check it with `syncagent check --mappings {out}`; "
               f"the diff is {out / 'calibration.diff'})")
    typer.echo(f"held-out AUC of the score: current {_auc_text(held['current']['auc']['score'])}"
               f"; proposed {_auc_text(held['proposed']['auc']['score'])}; plain logistic "
               f"regression {held['logistic_regression_auc']:.3f}")
    typer.echo(f"MQLs per 1,000: current {held['current']['mql']['per_1000']:g}, proposed "
               f"{held['proposed']['mql']['per_1000']:g}; precision current "
               f"{held['current']['mql']['precision']}, proposed "
               f"{held['proposed']['mql']['precision']}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("export-persons")(export_persons_command)
    app.command("backtest")(backtest_command)
    app.command("calibrate")(calibrate_command)
