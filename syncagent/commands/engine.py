"""CLI commands of the engine area: check, schema, preview. Registered by syncagent.cli."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from syncagent.commands.common import ConfigOption, StateOption, settings_for_command
from syncagent.commands.pipeline import SandboxOption
from syncagent.commands.pipeline import _settings as _pipeline_settings
from syncagent.engine import Decision, Rules, load_rules
from syncagent.engine.person_file import parse_person, read_person_json
from syncagent.engine.schema import json_schemas
from syncagent.errors import ConfigError
from syncagent.settings import Settings, load_settings

if TYPE_CHECKING:
    from state.handoff import TaskRecord, TimerRow
    from state.store import StateStore
    from syncagent.engine.model import UserDirectory

PAST_ALERTS = 20   # preview shows the newest ones; reports read the table in full

MappingsOption = typer.Option(None, "--mappings", help="Folder of the mapping YAML files "
                              "(fields, grading, scoring, lifecycle, routing, nurture); default: "
                              "the setting mappings_dir, else ./mappings, else the shipped ones.")


def _mappings_in_use(mappings: Path | None) -> Path:
    """The folder given, else the one `run` would use (settings, ./mappings, shipped files)."""
    return mappings if mappings is not None else load_settings().mappings_dir


def check(mappings: Path | None = MappingsOption,
          live: bool = typer.Option(False, "--live", help="Also check the mappings against the "
                                    "org's and portal's schema (cached by `syncagent doctor`, "
                                    "read again when stale)."),
          config: Path | None = ConfigOption, state: str | None = StateOption,
          sandbox: str | None = SandboxOption) -> None:
    """Validate the mapping files: exit 0 when valid, 1 listing every problem (file:line)."""
    settings = None
    if live:
        settings = _pipeline_settings(config, state, sandbox, mappings)
        mappings = settings.mappings_dir
    mappings = _mappings_in_use(mappings)
    rules = load_rules(mappings)
    typer.echo(f"{mappings}: OK — {len(rules.fields.fields)} fields, "
               f"{len(rules.grading.profiles)} grading profiles, "
               f"{len(rules.scoring.activities) + len(rules.scoring.profile)} scoring rules, "
               f"{len(rules.routing.rules)} routing rules, {len(rules.nurture.tracks)} tracks.")
    if settings is not None:
        _check_live(settings)


def _check_live(settings: Settings) -> None:
    """The live-schema rows that concern the mappings, one line each with file and line."""
    from syncagent.preflight.live import Preflight, cached_or_live, facts_store
    from syncagent.preflight.mapping_rows import mapping_problems

    preflight = Preflight.of(settings)
    with facts_store(settings) as cache:
        facts = cached_or_live(preflight, cache)
    problems = mapping_problems(preflight.rows(facts))
    for line in problems:
        typer.echo(line, err=True)
    if problems:
        typer.echo(f"{len(problems)} problem(s) between the mappings and the live schema; "
                   "nothing was written. `syncagent doctor` shows every requirement.", err=True)
        raise typer.Exit(1)
    typer.echo("live schema: every mapped field, property and value exists.")


def schema(out: Path = typer.Option(Path("mappings/schema"), "--out",
                                    help="Folder to write the *.schema.json files into.")
           ) -> None:
    """Write the JSON Schema of every mapping file (editors validate YAML as you type)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, document in json_schemas().items():
            (out / name).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n",
                                    encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write schemas to {out}: {error.strerror}",
                          hint="Pick a folder you can write to with --out.") from None
    typer.echo(f"wrote {len(json_schemas())} schemas to {out}")


def preview(
    person: Path | None = typer.Option(None, "--person", help="JSON file describing one person "
                                       "(see mappings/examples/person.json).", dir_okay=False),
    email: str | None = typer.Option(None, "--email", help="Explain the person with this e-mail "
                                     "from the state DB's mirror (run a sync first)."),
    mappings: Path | None = MappingsOption,
    as_json: bool = typer.Option(False, "--json", help="Print the decision as JSON."),
    now: str | None = typer.Option(None, "--now", help="Evaluate as of this ISO time, e.g. "
                                   "2026-11-25T09:00:00Z (default: the file's `now`, else now)."),
    config: Path | None = ConfigOption,
    state: str | None = StateOption,
) -> None:
    """Evaluate one person and print the full decision with every reason."""
    rules = load_rules(_mappings_in_use(mappings))
    if (person is None) == (email is None):
        raise ConfigError("give exactly one of --person FILE.json or --email ADDRESS",
                          hint="e.g. syncagent preview --email ana@acme.com")
    if email is not None:
        _preview_email(email, rules, _parse_now(now) if now else datetime.now(UTC), as_json,
                       config, state)
        return
    assert person is not None  # one of the two, checked above
    try:
        text = person.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {person}: {error.strerror}",
                          hint="Pass an existing JSON file with --person.") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{person}: byte {error.start} is not UTF-8 text",
                          hint="Save the person file as UTF-8.") from None
    from syncagent.engine import evaluate

    person_input, file_now, routing, users = parse_person(read_person_json(text, str(person)),
                                                          rules, str(person))
    at = _parse_now(now) if now else file_now
    decision, new_state = evaluate(person_input, rules, at, routing, users)
    if as_json:
        typer.echo(json.dumps({"decision": decision.to_dict(),
                               "routing_state": new_state.to_dict()}, indent=2))
        return
    _print_decision(decision)


def _preview_email(email: str, rules: Rules, at: datetime, as_json: bool,
                   config: Path | None, state: str | None) -> None:
    from connectors.registry import machine_owners
    from state.store import StateStore
    from syncagent.pipeline.decide import explain_email, load_world

    settings = settings_for_command(config, state)
    store = StateStore(settings.state_url)
    store.require_schema()
    owners = machine_owners(settings)
    found = explain_email(store, rules, email, at, owners)
    if not found:
        raise ConfigError(f"no person with e-mail {email!r} in the state DB",
                          hint="Check the address, or run `syncagent sync --once` first.")
    if len(found) > 1:
        typer.echo(f"{len(found)} persons share {email} (a data-quality item): each follows.")
    for person_id, decision in found:
        timers, alerts, step_tasks = _handoff_of(store, person_id)
        if as_json:
            typer.echo(json.dumps({"person_id": person_id, "decision": decision.to_dict(),
                                   "timers": [_timer_json(t, step_tasks.get(t.key))
                                              for t in timers],
                                   "past_alerts": [_alert_json(a) for a in alerts]},
                                  indent=2))
        else:
            _print_decision(decision)
            _print_handoff(timers, alerts, step_tasks, load_world(store, owners).users)


def _handoff_of(store: StateStore, person_id: int
                ) -> tuple[list[TimerRow], list[TaskRecord], dict[str, TaskRecord]]:
    """The person's stored timer steps (every status, by due time), the alerts the agent
    queued for them (newest first) and the steps' tasks by key: the decision shows what is
    due, these what happened."""
    timers = store.handoff.timers_of([person_id]).get(person_id, [])
    tasks = store.handoff.tasks_of(person_id)
    alerts = [t for t in tasks if t.kind == "alert"]
    return timers, alerts[:PAST_ALERTS], {t.key: t for t in tasks if t.kind != "alert"}


def _timer_json(timer: TimerRow, task: TaskRecord | None) -> dict[str, Any]:
    return {"kind": timer.kind, "status": timer.status, "due_at": timer.due_at.isoformat(),
            "started_at": timer.started_at.isoformat(), "recipient": timer.recipient,
            "fired_at": timer.fired_at.isoformat() if timer.fired_at else None,
            "key": timer.key, "task": _task_json(task) if task else None}


def _task_json(task: TaskRecord) -> dict[str, Any]:
    return {"system": task.system, "recipient": task.recipient,
            "at": task.created_at.isoformat(), "detail": task.detail}


def _alert_json(task: TaskRecord) -> dict[str, Any]:
    return {"name": task.name, "key": task.key, **_task_json(task)}


def _sent(task: TaskRecord | None) -> str:
    """Where a task went, or why it was not sent (a task with no system never was)."""
    if task is None:
        return "-"
    if task.system:
        return f"a {task.system} task"
    reason = task.detail.get("not_given") or "; ".join(
        f"{k}: {v}" for k, v in sorted(task.detail.items()))
    return f"not sent: {reason}"


def _print_handoff(timers: list[TimerRow], alerts: list[TaskRecord],
                   step_tasks: dict[str, TaskRecord], users: UserDirectory) -> None:
    console = Console()

    def who(user_id: str | None) -> str:
        user = users.by_id.get(user_id or "")
        return (user.name or user.email or user.id) if user else (user_id or "nobody")

    if timers:
        table = Table(title="Stored SLA timers (state DB)")
        for column in ("step", "status", "due (UTC)", "fired (UTC)", "to", "task"):
            table.add_column(column)
        for t in timers:
            table.add_row(t.kind, t.status, f"{t.due_at:%Y-%m-%d %H:%M}",
                          f"{t.fired_at:%Y-%m-%d %H:%M}" if t.fired_at else "-",
                          who(t.recipient), _sent(step_tasks.get(t.key)))
        console.print(table)
    else:
        console.print("no stored SLA timers")
    for a in alerts:
        console.print(f"[yellow]past alert[/yellow] {a.name} at {a.created_at:%Y-%m-%d %H:%M}"
                      f" UTC to {who(a.recipient)} ({_sent(a)})")
    if not alerts:
        console.print("no past alerts")


def _parse_now(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--now {text!r} is not an ISO date-time",
                          hint="Use e.g. --now 2026-11-25T09:00:00Z.") from None
    if moment.tzinfo is None:
        raise ConfigError(f"--now {text!r} has no time zone",
                          hint="Add Z (UTC) or an offset, e.g. 2026-11-25T09:00:00Z.")
    return moment.astimezone(UTC)


def _print_decision(d: Decision) -> None:
    console = Console()
    table = Table(title=f"Decision for {d.person_id} at {d.evaluated_at.isoformat()}",
                  show_lines=True)
    table.add_column("What", style="bold")
    table.add_column("Result")
    table.add_column("Why")
    rows: list[tuple[str, Any, str]] = [
        ("grade", d.grade.grade, "\n".join(d.grade.reasons)),
        ("score", d.score.score, "\n".join(d.score.reasons) or "no scored activity"),
        ("segment", d.segment.segment, d.segment.reason),
        ("stage", d.stage.stage + (f" (MQL {d.stage.mql_date:%Y-%m-%d %H:%M})"
                                   if d.stage.mql_date else ""), d.stage.reason),
        ("owner", d.owner.owner_id or "-", d.owner.why),
        ("track", d.track.track or "-", d.track.reason),
        ("persona", d.persona or "-", "first persona in grading.yaml whose conditions hold"),
    ]
    for what, value, why in rows:
        table.add_row(what, str(value), why)
    console.print(table)
    for alert in d.alerts:
        console.print(f"[yellow]alert[/yellow] {alert.message}")
    for timer in d.sla:
        console.print(f"[cyan]sla[/cyan] {timer.kind} at {timer.due_at.isoformat()}: "
                      f"{timer.message}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("check")(check)
    app.command("schema")(schema)
    app.command("preview")(preview)
