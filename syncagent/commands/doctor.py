"""`syncagent doctor`: every requirement of the settings and mappings, checked live.

One row per requirement: ✔ met, ✘ blocks a sync, ! switches a feature off; each ✘ and ! row
carries its fix. Exit 0 when nothing blocks, 1 otherwise. The facts read are cached in the
state DB for `sync`, `run` and `check --live`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from syncagent.commands.common import ConfigOption, JsonOption, StateOption
from syncagent.commands.pipeline import MappingsOption, SandboxOption, _settings
from syncagent.preflight.checks import BLOCKER, WARNING, Row, blockers
from syncagent.preflight.live import Preflight, facts_store, save


def doctor(as_json: bool = JsonOption, config: Path | None = ConfigOption,
           state: str | None = StateOption, sandbox: str | None = SandboxOption,
           mappings: Path | None = MappingsOption) -> None:
    """Check the org and the portal against everything the mappings need; say how to fix."""
    settings = _settings(config, state, sandbox, mappings)
    preflight = Preflight.of(settings)
    facts = preflight.read_live()
    with facts_store(settings) as cache:
        save(cache, facts)
    rows = preflight.rows(facts)
    if as_json:
        typer.echo(json.dumps(report_json(rows), indent=2))
    else:
        print_rows(rows, "syncagent doctor")
    raise typer.Exit(1 if blockers(rows) else 0)


def report_json(rows: list[Row]) -> dict[str, object]:
    return {"ok": not blockers(rows), "blockers": len(blockers(rows)),
            "warnings": sum(1 for r in rows if r.status == WARNING),
            "rows": [r.as_json() for r in rows]}


def print_rows(rows: list[Row], title: str) -> None:
    table = Table(title=title, show_lines=False)
    for name in ("", "system", "requirement", "state", "fix"):
        table.add_column(name, overflow="fold")
    style = {BLOCKER: "red", WARNING: "yellow"}
    for row in rows:
        table.add_row(f"[{style.get(row.status, 'green')}]{row.symbol}[/]", row.system,
                      row.requirement, row.detail, row.fix)
    console = Console()
    console.print(table)
    stop = len(blockers(rows))
    warn = sum(1 for r in rows if r.status == WARNING)
    console.print(f"{len(rows)} requirements: {stop} blocking (✘), {warn} switching a feature "
                  f"off (!). " + ("Nothing blocks a sync." if not stop else
                                  "Fix the ✘ rows (`syncagent setup` shows what it would "
                                  "create), then run doctor again."))


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("doctor")(doctor)
