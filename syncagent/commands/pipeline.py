"""CLI commands of the pipeline area: sync, run, dry-run, rescore (errors: ledger.py)."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from syncagent.commands.common import ConfigOption, JsonOption, StateOption, settings_for_command
from syncagent.pipeline.agent import build_agent, sandbox_clock, sandbox_settings, save_usage
from syncagent.pipeline.cycle import (
    Agent,
    CycleOptions,
    CycleReport,
    for_plans,
    plan_context,
    run_cycle,
)
from syncagent.pipeline.housekeeping import prune_history
from syncagent.pipeline.plan import PersonPlan, PlanContext, plan_person
from syncagent.preflight.live import refuse_while_blocked
from syncagent.settings import Settings

SandboxOption = typer.Option(
    None, "--sandbox",
    help="Run against a sandbox, e.g. https://127.0.0.1:8765 (credentials and CA come from "
         "its /__sandbox/info).")
MappingsOption = typer.Option(None, "--mappings", help="Folder of the mapping YAML files.")


def _settings(config: Path | None, state: str | None, sandbox: str | None,
              mappings: Path | None = None) -> Settings:
    overrides: dict[str, Any] = sandbox_settings(sandbox) if sandbox else {}
    if mappings is not None:
        overrides["mappings_dir"] = mappings
    return settings_for_command(config, state, **overrides)


def _agent(settings: Settings, sandbox: str | None, *, write: bool = True) -> Agent:
    """The agent; against a sandbox it takes its time from the sandbox's clock, so hours the
    sandbox simulates pass for the agent too (timers fall due, cooldowns end)."""
    agent = build_agent(settings, write=write)
    if sandbox:
        agent.clock = sandbox_clock(sandbox, settings.ca_bundle)
    return agent


def sync(once: bool = typer.Option(True, "--once", help="Run one cycle and exit."),
         as_json: bool = JsonOption, config: Path | None = ConfigOption,
         state: str | None = StateOption, sandbox: str | None = SandboxOption,
         mappings: Path | None = MappingsOption) -> None:
    """Run one cycle: pull, match, evaluate, plan, push."""
    settings = _settings(config, state, sandbox, mappings)
    agent = _agent(settings, sandbox)
    refuse_while_blocked(settings)
    report = _cycle(agent, CycleOptions(), retention_days=settings.retention_days)
    _print_report(report, as_json)
    _exit_if_failed(report)


def rescore(as_json: bool = JsonOption, config: Path | None = ConfigOption,
            state: str | None = StateOption, sandbox: str | None = SandboxOption,
            mappings: Path | None = MappingsOption) -> None:
    """Re-evaluate everyone after a rules change; write only what differs."""
    settings = _settings(config, state, sandbox, mappings)
    agent = _agent(settings, sandbox)
    refuse_while_blocked(settings)
    report = _cycle(agent, CycleOptions(rescore=True, pull=False))
    _print_report(report, as_json)
    _exit_if_failed(report)


def dry_run(config: Path | None = ConfigOption, state: str | None = StateOption,
            sandbox: str | None = SandboxOption, mappings: Path | None = MappingsOption,
            rescore_all: bool = typer.Option(False, "--all", help="Plan for every person."),
            limit: int = typer.Option(200, help="Show at most this many changes."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON: every change, and "
                                         "the rules impact of --mappings against the live "
                                         "mapping files (as `report rules-impact`).")) -> None:
    """Show what a cycle would write (record, field, old, new); write nothing."""
    agent = _agent(_settings(config, state, sandbox, mappings), sandbox, write=False)
    changes: list[tuple[str, str, str, str]] = []
    context: list[PlanContext] = []

    def collect(plans: list[PersonPlan]) -> None:
        changes.extend(_changes(plans, agent, context))

    report = _cycle(agent, CycleOptions(rescore=rescore_all, on_plans=collect))
    if as_json:
        typer.echo(json.dumps(_dry_run_data(changes, report, agent, config), indent=2,
                              default=str))
        return
    _print_changes(changes, limit, report)


def _dry_run_data(changes: list[tuple[str, str, str, str]], report: CycleReport, agent: Agent,
                  config: Path | None) -> dict[str, Any]:
    """The changes, and what the mappings in use would shift against the live ones (the
    setting mappings_dir): the summary `syncagent report rules-impact` prints."""
    from syncagent.engine.loader import load_rules
    from syncagent.reports.impact import impact_summary
    from syncagent.settings import load_settings

    live = load_rules(load_settings(config).mappings_dir)
    return {"changes": [dict(zip(("record", "field", "old", "new"), change, strict=True))
                        for change in changes],
            "persons_evaluated": report.persons_evaluated, "api_calls": report.api_calls,
            "rules_impact": impact_summary(agent.store, live, agent.rules, agent.clock(),
                                           agent.machine_owners)}


def _changes(plans: list[PersonPlan], agent: Agent,
             cache: list[PlanContext]) -> list[tuple[str, str, str, str]]:
    from syncagent.pipeline.decide import load_world

    if not cache:
        cache.append(plan_context(agent, load_world(agent.store, agent.machine_owners)))
    out: list[tuple[str, str, str, str]] = []
    context = for_plans(agent.store, cache[0], plans)
    rows_of = [(plan, plan_person(plan, context)) for plan in plans]
    # Creates and list changes happen once per key: those already done are not pending.
    done = agent.store.outbox.keys_done(row.idempotency_key for _plan, rows in rows_of
                                        for row in rows if row.operation != "update")
    for plan, rows in rows_of:
        current = {(r.system, r.object, r.remote_id): r.fields for r in plan.records}
        for row in (r for r in rows if r.idempotency_key not in done):
            record = f"{row.system} {row.object} {row.remote_id or '(new)'}"
            old = current.get((row.system, row.object, row.remote_id or ""), {})
            out.extend((record, name, _short(old.get(name)), _short(value))
                       for name, value in row.fields.items() if not name.startswith("__"))
    return out


def _short(value: Any, width: int = 60) -> str:
    text = "" if value is None else str(value).replace("\n", " | ")
    return text if len(text) <= width else text[:width - 1] + "…"


def _print_changes(changes: list[tuple[str, str, str, str]], limit: int,
                   report: CycleReport) -> None:
    table = Table(title=f"Planned changes ({len(changes)}; nothing was written)")
    for name in ("record", "field", "old value", "new value"):
        table.add_column(name)
    for change in changes[:limit]:
        table.add_row(*change)
    console = Console()
    console.print(table)
    if len(changes) > limit:
        console.print(f"… and {len(changes) - limit} more (use --limit).")
    console.print(f"{report.persons_evaluated} persons evaluated; "
                  f"API calls: {report.api_calls}")


def _cycle(agent: Agent, options: CycleOptions, stop: threading.Event | None = None, *,
           retention_days: int = 0) -> CycleReport:
    try:
        report = run_cycle(agent, stop or threading.Event(), options)
    finally:
        save_usage(agent)
    if agent.write and retention_days:  # after the cycle, so it never delays a sync
        prune_history(agent.store, retention_days, agent.clock())
    return report


def _print_report(report: CycleReport, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_json()))
        return
    data = report.as_json()
    table = Table(title="Cycle")
    table.add_column("figure")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, json.dumps(value))
    Console().print(table)


def _exit_if_failed(report: CycleReport) -> None:
    """A `failed` cycle exits 1 with one line naming the first failure; `partial` exits 0 (its
    counts say what to look at: `syncagent errors`)."""
    if report.status != "failed":
        return
    first = report.errors[0] if report.errors else {}
    typer.secho(f"error: the cycle failed: {first.get('message') or first.get('error')}",
                err=True, fg="red")
    typer.echo("hint: see `syncagent status` and the log; the next cycle retries what waits.",
               err=True)
    raise typer.Exit(1)


def run(config: Path | None = ConfigOption, state: str | None = StateOption,
        sandbox: str | None = SandboxOption, mappings: Path | None = MappingsOption,
        metrics_port: int | None = typer.Option(
            None, "--metrics-port", min=1, max=65535,
            help="Serve Prometheus metrics (read from the state DB) at "
                 "http://127.0.0.1:PORT/metrics while the agent runs.")) -> None:
    """Run the agent: one cycle every interval, until SIGTERM or Ctrl-C."""
    from syncagent.scheduler import run_agent

    try:
        with _sigterm_ends_setup():
            settings = _settings(config, state, sandbox, mappings)
            agent = _agent(settings, sandbox)
            refuse_while_blocked(settings)
    except _StoppedBeforeStart:
        typer.echo("stopped before the first cycle (SIGTERM while checking the systems)",
                   err=True)
        return

    def cycle(stop: threading.Event) -> object:
        # The scheduler's event: SIGTERM ends the cycle after the batch in flight.
        if stop.is_set():
            return None
        return _cycle(agent, CycleOptions(), stop, retention_days=settings.retention_days)

    if metrics_port is not None:
        from syncagent.reports.metrics import serve_metrics

        serve_metrics(agent.store, metrics_port)
    run_agent(cycle=cycle, store=agent.store, holder=agent.holder,
              interval_seconds=settings.interval_seconds, jitter_seconds=settings.jitter_seconds,
              lease_seconds=settings.lease_seconds)


class _StoppedBeforeStart(BaseException):
    """SIGTERM arrived before the scheduler (which handles it) started. A BaseException, so
    no `except Exception` in the checks swallows it."""


@contextmanager
def _sigterm_ends_setup() -> Iterator[None]:
    """SIGTERM while `run` still checks the systems (a hung remote) ends it at once, exit 0."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        raise _StoppedBeforeStart

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("sync")(sync)
    app.command("run")(run)
    app.command("dry-run")(dry_run)
    app.command("rescore")(rescore)
