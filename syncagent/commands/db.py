"""CLI commands over the state DB: `db upgrade` and `status`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from state.store import StateStore, safe_url
from syncagent.commands.common import ConfigOption, JsonOption, StateOption, settings_for_command

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


def status(
    config: Path | None = ConfigOption,
    state: str | None = StateOption,
    as_json: bool = JsonOption,
    check: bool = typer.Option(
        False, "--check",
        help="Exit 1 unless a cycle finished within 3 intervals (for container health checks)."),
) -> None:
    """Last runs, cursors, outbox counts, dead letters and API usage."""
    settings = settings_for_command(config, state)
    summary = StateStore(settings.state_url).status_summary()
    if check:
        _exit_unless_fresh(summary, settings.interval_seconds)
    if as_json:
        typer.echo(json.dumps(summary, default=_json_default, indent=2))
        return
    _print_tables(summary)


def _exit_unless_fresh(summary: dict[str, Any], interval_seconds: int) -> None:
    finished = [run["finished_at"] for run in summary["runs"] if run["finished_at"]]
    horizon = datetime.now(UTC) - timedelta(seconds=3 * interval_seconds + 60)
    if not finished or max(finished) < horizon:
        typer.echo("unhealthy: no cycle finished recently", err=True)
        raise typer.Exit(1)


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
    for name in ("pending", "in flight", "done", "dead letters"):
        outbox.add_column(name)
    counts = summary["outbox"]
    outbox.add_row(*(str(counts.get(key, 0)) for key in ("pending", "in_flight", "done", "dead")))
    console.print(outbox)
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
