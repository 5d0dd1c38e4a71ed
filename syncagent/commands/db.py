"""CLI commands over the state DB: `db upgrade`, `db prune` and `status`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from state.common import missing_sqlite_file
from state.store import StateStore, safe_url
from syncagent.commands.common import ConfigOption, JsonOption, StateOption, settings_for_command
from syncagent.errors import SyncAgentError
from syncagent.health import UNHEALTHY, UNKNOWN, unhealthy_reasons
from syncagent.settings import Settings

db_app = typer.Typer(help="Create or migrate the state DB.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(config: Path | None = ConfigOption, state: str | None = StateOption) -> None:
    """Create the schema, or migrate it to the newest version (safe to run again, and when
    several agents start at once: they take turns under a lock)."""
    from state.migrate import upgrade_with_lock

    settings = settings_for_command(config, state)
    before, after = upgrade_with_lock(StateStore(settings.state_url))
    verb = "already at" if before == after else "upgraded to"
    typer.echo(f"state DB {safe_url(settings.state_url)}: {verb} revision {after}")


@db_app.command("prune")
def prune(config: Path | None = ConfigOption, state: str | None = StateOption,
          days: int | None = typer.Option(
              None, "--days", min=1, max=36_500,
              help="Keep this many days instead of the `retention_days` setting."),
          as_json: bool = JsonOption) -> None:
    """Delete run history and change-latency samples older than the retention (the
    `retention_days` setting, 180 by default). A running agent does this once a day itself."""
    settings = settings_for_command(config, state)
    keep = settings.retention_days if days is None else days
    if keep == 0:
        typer.echo("retention_days is 0: history is kept for good (give --days N to prune).")
        return
    store = StateStore(settings.state_url)
    store.require_schema()
    before = datetime.now(UTC) - timedelta(days=keep)
    pruned = store.retention.prune(before, max_rows=10**12)
    if as_json:
        typer.echo(json.dumps({"before": before.isoformat(), **pruned.as_dict()}))
        return
    typer.echo(f"pruned {pruned.runs} runs and {pruned.latency} change-latency samples "
               f"older than {before:%Y-%m-%d %H:%M} UTC ({keep} days kept)")


def status(
    config: Path | None = ConfigOption,
    state: str | None = StateOption,
    as_json: bool = JsonOption,
    check: bool = typer.Option(
        False, "--check",
        help="Health check: exit 0 healthy, 1 unhealthy (printing why), 2 when it cannot "
             "tell (no state DB)."),
) -> None:
    """Last runs, cursors, outbox counts (rows in flight included), dead letters, API usage."""
    settings = settings_for_command(config, state)
    if check:
        _check(settings)
        return
    summary = StateStore(settings.state_url).status_summary()
    if as_json:
        typer.echo(json.dumps(summary, default=_json_default, indent=2))
        return
    _print_tables(summary)


def _check(settings: Settings) -> None:
    summary = _summary_or_none(settings.state_url)
    if summary is None:
        raise typer.Exit(UNKNOWN)
    reasons = unhealthy_reasons(summary, datetime.now(UTC), settings.interval_seconds,
                                settings.health)
    for reason in reasons:
        typer.echo(f"unhealthy: {reason}", err=True)
    if reasons:
        raise typer.Exit(UNHEALTHY)
    typer.echo("healthy")


def _summary_or_none(url: str) -> dict[str, Any] | None:
    """The status summary, or None (after saying why) when there is no state DB to judge."""
    missing = missing_sqlite_file(url)
    if missing is not None:
        typer.echo(f"unknown: no state DB at {missing}", err=True)
        return None
    try:
        return StateStore(url).status_summary()
    except SyncAgentError as error:
        typer.echo(f"unknown: {error.message}", err=True)
        return None


def _json_default(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _print_tables(summary: dict[str, Any]) -> None:
    console = Console()
    console.print(f"[bold]State DB[/bold] {summary['state']} "
                  f"(schema {summary['schema_revision']}), {summary['persons']} persons")
    runs = Table(title="Last runs")
    for name in ("run", "started", "finished", "status", "counts", "API calls", "errors"):
        runs.add_column(name)
    for run in summary["runs"]:
        runs.add_row(str(run["id"]), _when(run["started_at"]), _when(run["finished_at"]),
                     run["status"], _compact(run["counts"]), _compact(run["api_calls"]),
                     str(len(run["errors"] or [])))
    _print_or_empty(console, runs, "no runs yet: start one with `syncagent sync --once`")
    cursors = Table(title="Sync cursors")
    for name in ("stream", "read up to", "last id"):
        cursors.add_column(name)
    for stream, cursor in summary["cursors"].items():
        cursors.add_row(stream, _when(cursor["modstamp"]), cursor["last_id"] or "-")
    _print_or_empty(console, cursors, "no cursors yet: nothing has been pulled")
    outbox = Table(title="Outbox")
    for name in ("pending", "in flight", "claims expired", "done", "dead letters", "discarded"):
        outbox.add_column(name)
    counts = {**summary["outbox"], "claims_expired": summary["claims_expired"]}
    outbox.add_row(*(str(counts.get(key, 0)) for key in (
        "pending", "in_flight", "claims_expired", "done", "dead", "discarded")))
    console.print(outbox)
    if summary["claims_expired"]:
        console.print("Rows whose claim expired (a killed push) are re-sent by the next cycle.")
    if summary["dead_letters"]:
        console.print("See the dead letters with `syncagent errors`.")
    _print_usage(console, summary["api_usage"])
    if summary["last_cycle"]:
        console.print(f"Last cycle: {json.dumps(summary['last_cycle'])}")


def _print_usage(console: Console, usage: dict[str, Any]) -> None:
    """The agent's API calls over the rolling day against its budget, per system."""
    table = Table(title="API usage, rolling 24 h")
    for name in ("system", "agent calls", "agent budget", "share", "org/portal used",
                 "allocation"):
        table.add_column(name)
    for system, status in sorted(usage.items()):
        budget = status.get("budget") or {}
        table.add_row(system, *(str(budget.get(key) if budget.get(key) is not None else "-")
                                for key in ("agent_calls_24h", "agent_limit", "share",
                                            "remote_used", "allocation")))
    _print_or_empty(console, table, "no API calls yet")


def _print_or_empty(console: Console, table: Table, empty_note: str) -> None:
    console.print(table)
    if table.row_count == 0:
        console.print(f"  ({empty_note})")


def _compact(values: dict[str, Any] | None) -> str:
    return ", ".join(f"{key} {value}" for key, value in (values or {}).items()) or "-"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.add_typer(db_app, name="db")
    app.command("status")(status)
