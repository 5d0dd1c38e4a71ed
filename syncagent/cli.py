"""The `syncagent` command line (typer).

This module owns the app, the global options and the error boundary; each area adds its
commands from `syncagent/commands/<area>.py` through `register(app)`. Every `SyncAgentError`
that reaches the top is printed as one line (what went wrong, then what to do) and exits 1:
a user never sees a traceback for a problem they can fix.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import typer

from syncagent import __version__, memory
from syncagent.commands import (
    db,
    demo,
    doctor,
    engine,
    init,
    learn,
    ledger,
    pipeline,
    report,
    sandbox,
    serve,
    setup,
)
from syncagent.errors import SyncAgentError

app = typer.Typer(
    name="syncagent",
    help="Keep Salesforce and HubSpot agreed on every lead: grade, score, stage, owner, track.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"syncagent {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Keep Salesforce and HubSpot agreed on every lead: grade, score, stage, owner, track."""


def _with_error_boundary(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print our own errors as `error:` + `hint:` lines and exit 1; real bugs keep tracebacks."""

    @functools.wraps(command)  # typer reads the signature through __wrapped__
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SyncAgentError as error:
            typer.secho(f"error: {error.message}", err=True, fg="red")
            typer.echo(f"hint: {error.hint}", err=True)
            raise typer.Exit(1) from None

    return run


def _register_areas(target: typer.Typer) -> None:
    for area in (init, db, engine, sandbox, pipeline, ledger, demo, doctor, setup, report,
                 learn, serve):
        area.register(target)
    for info in target.registered_commands:
        if info.callback is not None:
            info.callback = _with_error_boundary(info.callback)
    for group in target.registered_groups:
        if group.typer_instance is not None:
            for info in group.typer_instance.registered_commands:
                if info.callback is not None:
                    info.callback = _with_error_boundary(info.callback)


_register_areas(app)


def main() -> None:
    """Console-script entry point. Malloc's arenas are capped first, before any thread
    exists (syncagent/memory.py)."""
    memory.limit_arenas()
    app()
