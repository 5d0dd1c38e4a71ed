"""Drive the real `syncagent` CLI (typer's runner, in this process) against a sandbox.

In-process on purpose: fault-injection tests patch the store or a connector and then run
`syncagent sync --once` exactly as an admin would.
"""

from __future__ import annotations

import json
import re
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import Result
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from syncagent.cli import app

SHIPPED_MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
AGENT_COMMANDS = {"sync", "rescore", "dry-run", "run"}


@dataclass
class Cli:
    """`syncagent ...` with --state, and --sandbox/--mappings for the commands that sync."""

    sandbox_url: str
    state_url: str
    mappings: Path

    def __call__(self, *args: str) -> Result:
        command = [*args, "--state", self.state_url]
        if args[0] in AGENT_COMMANDS:
            command += ["--sandbox", self.sandbox_url, "--mappings", str(self.mappings)]
        # A wide terminal, as an admin's: tables are not cut at 80 columns.
        return CliRunner().invoke(app, command, env={"COLUMNS": "240"})

    def json(self, *args: str, expect: int | None = 0) -> Any:
        """Run with --json and parse what it printed (the last JSON line of stdout)."""
        result = self(*args, "--json")
        if expect is not None:
            assert result.exit_code == expect, _explain(result)
        try:
            return json.loads(result.stdout)
        except ValueError:  # something printed before the JSON line
            lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
            assert lines, _explain(result)
            return json.loads(lines[-1])

    def in_flight(self) -> int:
        return int(self.json("status")["in_flight"])


def _explain(result: Result) -> str:
    tail = "".join(traceback.format_exception(result.exception)) \
        if result.exception and not isinstance(result.exception, SystemExit) else ""
    return f"exit {result.exit_code}\nstdout: {result.stdout[-2000:]}\n" \
           f"stderr: {result.stderr[-2000:]}\n{tail[-3000:]}"


def copy_mappings(target: Path) -> Path:
    shutil.copytree(SHIPPED_MAPPINGS, target)
    return target


def restore_mappings(target: Path) -> None:
    shutil.rmtree(target)
    shutil.copytree(SHIPPED_MAPPINGS, target)


def break_list_references(nurture_yaml: Path) -> int:
    """Point every nurture track at a HubSpot list that does not exist, in whichever form the
    file names lists (`hubspot_list_id: 101` today, `hubspot_list: <name>` later). Returns how
    many tracks were changed."""
    content = nurture_yaml.read_text(encoding="utf-8")
    counter = iter(range(990001, 999999))
    by_id = re.compile(r"(hubspot_list_id:\s*)\S+")
    by_name = re.compile(r"(hubspot_list:\s*).+")
    content, ids = by_id.subn(lambda m: f"{m.group(1)}{next(counter)}", content)
    content, names = by_name.subn(lambda m: f'{m.group(1)}"No such list {next(counter)}"',
                                  content)
    nurture_yaml.write_text(content, encoding="utf-8")
    return ids + names


def age_claims(state_url: str, seconds: float) -> None:
    """Move every claim `seconds` into the past: what waiting out the claim window does."""
    engine = create_engine(state_url)
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT id, claimed_until FROM outbox "
                                       "WHERE status = 'in_flight'")).all()
        for row_id, until in rows:
            moved = _minus(until, seconds)
            connection.execute(text("UPDATE outbox SET claimed_until = :t WHERE id = :i"),
                               {"t": moved, "i": row_id})
    engine.dispose()


def _minus(value: Any, seconds: float) -> Any:
    from datetime import datetime, timedelta

    if isinstance(value, str):  # SQLite keeps datetimes as text
        parsed = datetime.fromisoformat(value)
        return (parsed - timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value - timedelta(seconds=seconds)
