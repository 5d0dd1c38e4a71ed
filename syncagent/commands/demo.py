"""`syncagent demo`: the whole agent against an in-process sandbox, start to finish.

A new user sees what the agent does before handing it credentials: a backfill cycle, a round
of simulated behaviour and rep actions, a second cycle, and a summary of what landed where.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from connectors.base import Progress as ReadProgress
from state.store import StateStore
from syncagent.commands.common import settings_for_command
from syncagent.commands.sandbox import require_sandbox_extra
from syncagent.engine.reasons_text import reasons_text_of
from syncagent.pipeline.agent import build_agent, save_usage, settings_from_info
from syncagent.pipeline.cycle import Agent, CycleOptions, CycleReport, run_cycle
from syncagent.sandbox.floor import floors, portal_truth, sent_rows, totals

console = Console()
DB_NAME = "demo-state.db"


def demo(leads: int = typer.Option(2000, help="Seeded leads in the sandbox."),
         seed: int = typer.Option(7, help="Seed of the sandbox data."),
         state_dir: Path = typer.Option(Path(".syncagent"), help="Where the demo state DB goes."),
         mappings: Path | None = typer.Option(
             None, help="Folder of the mapping files (default: ./mappings, else the shipped "
                        "ones)."),
         as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Start the sandbox, run the agent twice around simulated activity, explain the result."""
    require_sandbox_extra()
    from syncagent.sandbox.server import start_sandbox

    console.print(f"Starting the sandbox with {leads} leads (seed {seed})…")
    sandbox = start_sandbox(port=0, leads=leads, seed=seed)
    try:
        agent = _agent(sandbox.info, state_dir, mappings)
        agent.clock = sandbox.ctx.clock.now  # simulate() moves the sandbox's clock ahead
        truth = portal_truth(sandbox.ctx)     # what the backfill must read, before it starts
        first = _cycle_with_bar(agent, "Backfill")
        minimum = _calls_vs_minimum(agent, first, truth, state_dir / DB_NAME)
        console.print("Simulating a day: new behaviour, a rep's disqualification, a hand-picked "
                      "track, an owner change…")
        sandbox.simulate(minutes=24 * 60, events=max(50, leads // 10), rep_actions=10, seed=seed)
        second = _cycle_with_bar(agent, "Second cycle")
        summary = _summary(agent, first, second, sandbox.stats(), minimum)
        _print_summary(summary, as_json)
        if not as_json:
            console.print(f"\nThe reports in a browser: `syncagent serve --state "
                          f"sqlite:///{state_dir / DB_NAME}`, then open "
                          "http://127.0.0.1:8080/.")
    finally:
        sandbox.stop()


def _agent(info: dict[str, Any], state_dir: Path, mappings: Path | None) -> Agent:
    state_dir.mkdir(parents=True, exist_ok=True)
    db = state_dir / DB_NAME
    for leftover in state_dir.glob(f"{DB_NAME}*"):
        leftover.unlink()  # a demo starts from nothing, like a new install
    url = f"sqlite:///{db}"
    StateStore(url).upgrade()
    settings = settings_for_command(None, url, mappings_dir=mappings, **settings_from_info(info))
    return build_agent(settings)


def _cycle_with_bar(agent: Agent, title: str) -> CycleReport:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(p: ReadProgress) -> None:
            key = f"{p.system}.{p.stream}"
            if key not in tasks:
                tasks[key] = bar.add_task(f"{title}: {key}", total=p.total)
            bar.update(tasks[key], completed=p.records, total=p.total or p.records)

        report = run_cycle(agent, threading.Event(), CycleOptions(progress=on_progress))
    save_usage(agent)
    console.print(f"{title}: {report.persons_evaluated} persons evaluated, "
                  f"written {report.written}, created {report.created}, "
                  f"{report.rejected} rejected, API calls {report.api_calls}, "
                  f"{report.duration_s:.1f} s")
    return report


def _summary(agent: Agent, first: CycleReport, second: CycleReport,
             stats: dict[str, Any], minimum: dict[str, Any]) -> dict[str, Any]:
    decisions = agent.store.decisions.of()
    users = _user_names(agent)
    grades = Counter(d["grade"] for d in decisions.values())
    stages = Counter(d["stage"] for d in decisions.values())
    owners = Counter(users.get(d["owner"], d["owner"]) for d in decisions.values() if d["owner"])
    tracks = Counter(d["track"] for d in decisions.values() if d["track"])
    return {
        "persons": len(decisions),
        "grades": dict(sorted(grades.items())),
        "stages": dict(stages.most_common()),
        "mqls": sum(1 for d in decisions.values() if d["mql_date"]),
        "owners": dict(owners.most_common(8)),
        "tracks": dict(tracks.most_common()),
        "cycles": [first.as_json(), second.as_json()],
        "api_calls_vs_minimum": minimum,
        "explained": _explained(decisions),
        "sandbox_calls": stats.get("total_calls", stats.get("calls")),
    }


def _user_names(agent: Agent) -> dict[str, str]:
    """The CRM's user ids -> names (the CRM is the registered system that has users)."""
    for system, connector in agent.connectors.items():
        crm = connector.profile.crm
        if crm is not None:
            return {r.remote_id: r.fields.get(crm.users.name) or r.remote_id
                    for r in agent.store.mirror.records(system, crm.users.object)}
    return {}


def _calls_vs_minimum(agent: Agent, backfill: CycleReport, truth: dict[str, Any],
                      db: Path) -> dict[str, Any]:
    """What the backfill cost against the least the APIs' page and batch sizes allow, each
    operation counted as bench/e2e.py counts it (syncagent/sandbox/floor.py): reads from
    what the sandbox held before, writes from the outbox rows the backfill sent. Called
    before the second cycle: its calls and writes are not the backfill's."""
    calls = {system: c.calls.by_operation() for system, c in agent.connectors.items()}
    tables = floors(truth, sent_rows(str(db)), backfill.pulled_by_stream(), calls)
    return {system: {"calls": backfill.api_calls.get(system, 0),
                     "minimum": totals(tables[system])["minimum"]}
            for system in agent.connectors if system in tables}


def _explained(decisions: dict[int, dict[str, Any]]) -> str:
    best = max(decisions.values(), key=lambda d: (d["stage"] == "MQL", d["score"] or 0),
               default=None)
    if best is None:
        return "no person evaluated"
    return reasons_text_of(best["reasons"])


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    table = Table(title="What the agent did")
    table.add_column("")
    table.add_column("")
    for key in ("persons", "mqls", "grades", "stages", "owners", "tracks",
                "api_calls_vs_minimum"):
        table.add_row(key, json.dumps(summary[key]))
    console.print(table)
    console.print("[bold]One lead, explained[/bold] (this text is on the record as "
                  "Score_Reasons__c / score_reasons):")
    console.print(summary["explained"])
    console.print(
        "\nTo browse the records yourself: `syncagent sandbox --port 8765 --leads 2000 --seed 7`"
        " in one terminal, then `syncagent db upgrade` and `syncagent sync --once --sandbox "
        "https://127.0.0.1:8765` in another; the sandbox's /__sandbox/info gives credentials "
        "for any Salesforce or HubSpot client (see README, 'Sandbox').")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
