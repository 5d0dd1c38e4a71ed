"""`syncagent setup [--apply] [--salesforce-package DIR]`: create what doctor finds missing.

Without --apply it prints the plan and changes nothing. With --apply it creates the missing
Salesforce fields, picklist values, Lead Status values and permission set (assigned to the
integration user), and the HubSpot property group, properties, options and lists; it never
deletes anything and never changes an existing field's type. --salesforce-package writes the
Salesforce part as a Metadata API package instead, for a deploy through the admin's own
change process.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from syncagent.commands.common import ConfigOption, JsonOption, StateOption
from syncagent.commands.pipeline import MappingsOption, SandboxOption, _settings
from syncagent.preflight.checks import blockers
from syncagent.preflight.live import Preflight, facts_store, save
from syncagent.preflight.package import package_files, write_package
from syncagent.preflight.setup_apply import apply, hidden_fields, read_existing, value_sets
from syncagent.preflight.setup_plan import Action, plan


def setup(apply_plan: bool = typer.Option(False, "--apply", help="Create what is missing "
                                          "(default: print the plan, change nothing)."),
          package: Path | None = typer.Option(None, "--salesforce-package", file_okay=False,
                                              help="Write the Salesforce changes as a "
                                                   "Metadata API package into this folder."),
          as_json: bool = JsonOption, config: Path | None = ConfigOption,
          state: str | None = StateOption, sandbox: str | None = SandboxOption,
          mappings: Path | None = MappingsOption) -> None:
    """Plan (or with --apply, make) the fields, properties and lists the agent needs."""
    settings = _settings(config, state, sandbox, mappings)
    preflight = Preflight.of(settings)
    facts = preflight.read_live()
    rows = preflight.rows(facts)
    existing = read_existing(preflight, hidden_fields(preflight.requirements, facts)
                             + value_sets(rows))
    actions = plan(preflight.requirements, rows, facts, existing)
    _print_plan(actions, as_json, applying=apply_plan)
    if package is not None:
        files = package_files(actions, settings.salesforce.api_version)
        for path in write_package(package, files):
            typer.echo(f"wrote {path}")
    if not apply_plan:
        return
    count = apply(preflight, actions, typer.echo)
    after = preflight.read_live()
    with facts_store(settings) as cache:
        save(cache, after)
    left = blockers(preflight.rows(after))
    typer.echo(f"setup applied {count} change(s); {len(left)} requirement(s) still block "
               "syncing" + (": run `syncagent doctor` for their fixes." if left else "."))
    raise typer.Exit(1 if left else 0)


def _print_plan(actions: list[Action], as_json: bool, *, applying: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"actions": [a.as_json() for a in actions]}, indent=2))
        return
    todo = sum(1 for a in actions if a.applies)
    table = Table(title=f"syncagent setup: {todo} change(s) to make"
                        + ("" if applying else " (nothing changed; add --apply)"))
    for name in ("system", "action", "target", "detail"):
        table.add_column(name, overflow="fold")
    for action in actions:
        kind = action.kind if action.applies else f"[yellow]{action.kind}[/]"
        table.add_row(action.system, kind, action.target, action.detail)
    console = Console()
    console.print(table)
    if not actions:
        console.print("Nothing to do: the org and the portal have everything setup creates.")
    manual = [a for a in actions if not a.applies]
    if manual:
        console.print(f"{len(manual)} item(s) setup does not change (conflicts and manual "
                      "steps): their fix is in the detail column.")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("setup")(setup)
