"""The admin's ledgers: `errors` (dead letters, grouped, re-planned or discarded) and
`data-quality` (duplicates, rejected or untranslatable values, fields an API refused)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from state.store import StateStore
from syncagent.commands.common import ConfigOption, JsonOption, StateOption, settings_for_command
from syncagent.errors import ConfigError

ALL_ITEMS = 1_000_000  # data-quality items are listed in full (true totals)


def _store(config: Path | None, state: str | None) -> StateStore:
    store = StateStore(settings_for_command(config, state).state_url)
    store.require_schema()
    return store


def errors(config: Path | None = ConfigOption, state: str | None = StateOption,
           retry: list[int] = typer.Option([], "--retry", help="Re-plan this dead letter's "
                                           "record from current rules (repeatable)."),
           retry_code: str | None = typer.Option(None, "--retry-code",
                                                 help="Re-plan every dead letter with this "
                                                      "code."),
           retry_all: bool = typer.Option(False, "--retry-all", help="Re-plan every dead "
                                          "letter."),
           discard: list[int] = typer.Option([], "--discard", help="Remove this dead letter "
                                             "(repeatable)."),
           discard_code: str | None = typer.Option(None, "--discard-code",
                                                   help="Remove every dead letter with this "
                                                        "code."),
           code: str | None = typer.Option(None, "--code", help="List the dead letters with "
                                           "this code one by one (ids for --discard)."),
           limit: int = typer.Option(200, "--limit", help="With --code: list at most this "
                                     "many."),
           as_json: bool = JsonOption) -> None:
    """The writes the APIs refused (dead letters), grouped by system, code and field; re-plan
    them after fixing the cause, or discard them."""
    store = _store(config, state)
    if retry or retry_code or retry_all:
        _replan(store, retry or None, retry_code)
        return
    if discard or discard_code:
        _discard(store, discard or None, discard_code)
        return
    groups = store.outbox.dead_letter_groups()
    total = sum(group["count"] for group in groups)
    if code is not None:
        count = sum(group["count"] for group in groups if group["code"] == code)
        _print_letters(store.outbox.dead_letters(limit, code), count, as_json)
        return
    if as_json:
        typer.echo(json.dumps({"total": total, "groups": groups}, default=_iso))
        return
    _print_groups(groups, total)


def _replan(store: StateStore, ids: list[int] | None, code: str | None) -> None:
    persons, orphans = store.outbox.replan_dead(ids, code)
    typer.echo(f"{persons} person(s) will be re-evaluated and their writes planned afresh "
               "from the current mappings by the next cycle (no stored payload is re-sent).")
    if orphans:
        typer.echo(f"{orphans} dead letter(s) belong to no person and cannot be re-planned; "
                   "remove them with --discard.")


def _discard(store: StateStore, ids: list[int] | None, code: str | None) -> None:
    if ids is None and code is None:
        raise ConfigError("nothing to discard", hint="Give --discard ID or --discard-code CODE.")
    count = store.outbox.discard_dead(ids, code)
    typer.echo(f"{count} dead letter(s) discarded. The same values are not sent again; "
               "a change of the planned values sends them anew.")


def _print_groups(groups: list[dict[str, Any]], total: int) -> None:
    console = Console()
    table = Table(title=f"Dead letters: {total} in {len(groups)} group(s)")
    for name in ("system", "code", "field", "count", "first seen", "last seen", "example"):
        table.add_column(name)
    for g in groups:
        example = f"#{g['example_id']} {g['example_record']}: {_short(g['example_message'])}"
        table.add_row(g["system"], g["code"], g["field"], str(g["count"]), _when(g["first_seen"]),
                      _when(g["last_seen"]), example)
    console.print(table)
    if not groups:
        console.print("  (none: every write went through)")
    else:
        console.print("Fix the mapping or the record, then `syncagent errors --retry-code CODE` "
                      "(re-plans from current rules) or `--discard-code CODE`.")


def _print_letters(letters: list[dict[str, Any]], total: int, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"total": total, "letters": letters}, default=_iso))
        return
    table = Table(title=f"Dead letters with this code: {total} (showing {len(letters)})")
    for name in ("id", "record", "field", "message", "attempts"):
        table.add_column(name)
    for d in letters:
        table.add_row(str(d["id"]), f"{d['system']} {d['object']} {d['remote_id'] or '(new)'}",
                      d["field"], _short(d["message"]), str(d["attempts"]))
    Console().print(table)


def data_quality(config: Path | None = ConfigOption, state: str | None = StateOption,
                 as_json: bool = JsonOption) -> None:
    """Problems in the data a person should look at: duplicate e-mails (with their record
    ids), values rejected or not translatable, fields an API refused, poison values."""
    items = _store(config, state).flags.items(limit=ALL_ITEMS)
    if as_json:
        typer.echo(json.dumps({"total": len(items), "counts": dict(Counter(
            item["kind"] for item in items)), "items": items}, default=_iso))
        return
    console = Console()
    table = Table(title=f"Data-quality items: {len(items)}")
    for name in ("kind", "system", "object", "record(s)", "field", "detail"):
        table.add_column(name)
    for item in items:
        table.add_row(item["kind"], *_describe(item))
    console.print(table)
    if not items:
        console.print("  (none found)")


def _describe(item: dict[str, Any]) -> tuple[str, str, str, str, str]:
    detail = item["detail"] or {}
    records = detail.get("record_id") or detail.get("records") or detail.get("record_ids")
    if isinstance(records, list):
        records = ", ".join(str(r) if not isinstance(r, list | tuple) else " ".join(map(str, r))
                            for r in records)
    where = detail.get("mapping") or detail.get("mapping_file") or detail.get("file")
    line = detail.get("line") or detail.get("mapping_line")
    # The key names the problem when the detail does not (an ambiguous e-mail's address).
    reason = str(detail.get("reason") or detail.get("value") or item["key"].split(":", 1)[-1])
    if where:
        reason = f"{reason} ({where}{':' + str(line) if line else ''})"
    return (str(detail.get("system") or "-"), str(detail.get("object") or "-"),
            str(records or "-"), str(detail.get("field") or "-"), _short(reason))


def _short(value: Any, width: int = 80) -> str:
    text = "" if value is None else str(value).replace("\n", " | ")
    return text if len(text) <= width else text[:width - 1] + "…"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main typer app."""
    app.command("errors")(errors)
    app.command("data-quality")(data_quality)
