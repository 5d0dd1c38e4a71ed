"""`syncagent report NAME`: a report over the state DB as a table, JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table as RichTable

from state.common import missing_sqlite_file
from state.store import StateStore
from syncagent.commands.common import ConfigOption, JsonOption, StateOption, settings_for_command
from syncagent.errors import ConfigError
from syncagent.reports import REPORTS, Options, ReportResult, ReportSource, report_named
from syncagent.reports.model import GRANULARITIES, RulesChange, default_period, plain
from syncagent.settings import Settings

SPLITS = ("source", "segment", "none")


def parse_moment(text: str | None, option: str) -> datetime | None:
    """A date (its midnight) or an ISO datetime, in UTC unless it names its zone."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"{option} '{text}' is not a date or time",
                          hint=f"Give {option} as 2026-11-02 or 2026-11-02T09:00:00Z.") from None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    if value not in allowed:
        raise ConfigError(f"{option} '{value}' is not one of {', '.join(allowed)}",
                          hint=f"Use {option} " + " or ".join(allowed) + ".")
    return value


def report(
    name: str | None = typer.Argument(None, help="The report; leave it out to list them."),
    since: str | None = typer.Option(None, "--since", help="Start (a date or ISO time, UTC; "
                                     "default: 90 days before --until)."),
    until: str | None = typer.Option(None, "--until", help="End, not included (default: the "
                                     "end of today, UTC)."),
    by: str = typer.Option("week", "--by", help="Bucket size: day, week or month."),
    split: str = typer.Option("source", "--split", help="leads-over-time: split by source, "
                              "segment or none."),
    untouched_days: int = typer.Option(5, "--untouched-days", min=1, help="clean-your-room: "
                                       "days without a rep's touch that make a lead wait."),
    mappings: Path | None = typer.Option(None, "--mappings", help="Folder of the mapping "
                                         "files (default: the setting mappings_dir)."),
    proposed: Path | None = typer.Option(None, "--proposed", help="rules-impact: the folder "
                                         "of the proposed mapping files."),
    as_json: bool = JsonOption,
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of a table."),
    config: Path | None = ConfigOption,
    state: str | None = StateOption,
) -> None:
    """Reports over the state DB: leads over time, funnel, sources, campaigns, clean your
    room, MQL to SAL, sync health."""
    if name is None:
        for known in REPORTS.values():
            typer.echo(f"{known.name:16} {known.summary}")
        return
    chosen = report_named(name)
    now = datetime.now(UTC)
    period = default_period(now, _choice(by, GRANULARITIES, "--by"),  # type: ignore[arg-type]
                            parse_moment(since, "--since"), parse_moment(until, "--until"))
    if period.since >= period.until:
        raise ConfigError(f"--since {period.since.isoformat()} is not before --until "
                          f"{period.until.isoformat()}", hint="Give a start before the end.")
    settings = settings_for_command(config, state)
    options = Options(now=now, split=_choice(split, SPLITS, "--split"),  # type: ignore[arg-type]
                      untouched_days=untouched_days,
                      change=_change(proposed, settings) if name == "rules-impact" else None)
    result = chosen.run(_source(settings.state_url, mappings or settings.mappings_dir,
                                chosen.needs_rules), period, options)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif as_csv:
        write_csv(result)
    else:
        print_tables(result)


def _change(proposed: Path | None, settings: Settings) -> RulesChange:
    if proposed is None:
        raise ConfigError("rules-impact compares proposed mapping files with the live ones, "
                          "and no --proposed folder was given",
                          hint="Run `syncagent report rules-impact --proposed DIR` (check the "
                               "folder first with `syncagent check --mappings DIR`).")
    from connectors.registry import machine_owners
    from syncagent.engine.loader import load_rules

    return RulesChange(load_rules(proposed), machine_owners(settings))


def _source(url: str, mappings: Path, needs_rules: bool) -> ReportSource:
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise ConfigError(f"there is no state DB at {missing}",
                          hint="Pass --state (or set state_url), or run `syncagent sync "
                               "--once` first.")
    store = StateStore(url)
    store.require_schema()
    rules = None
    if needs_rules:
        from syncagent.engine.loader import load_rules

        rules = load_rules(mappings)
    return ReportSource(store, rules)


def write_csv(result: ReportResult) -> None:
    """Each table as a CSV block (a `# title` line, the header, the rows), a blank line
    between blocks."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    for index, table in enumerate(result.tables):
        if len(result.tables) > 1:
            if index:
                sys.stdout.write("\n")
            sys.stdout.write(f"# {table.title}\n")
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow([_cell(row[c], csv_blank="") for c in table.columns])


def print_tables(result: ReportResult) -> None:
    console = Console()
    period = result.period
    console.print(f"[bold]{result.report}[/bold] {period.since:%Y-%m-%d %H:%M} to "
                  f"{period.until:%Y-%m-%d %H:%M} UTC, by {period.by}")
    for table in result.tables:
        shown = RichTable(title=table.title)
        for column in table.columns:
            shown.add_column(column)
        for row in table.rows:
            shown.add_row(*(_cell(row[c], csv_blank="-") for c in table.columns))
        console.print(shown)
        if not table.rows:
            console.print("  (nothing in this period)")
    for note in result.notes:
        console.print(f"[dim]{note}[/dim]")


def _cell(value: Any, csv_blank: str) -> str:
    if value is None:
        return csv_blank
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(plain(value))


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("report")(report)
