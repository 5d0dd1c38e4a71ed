"""`syncagent db upgrade` and `syncagent status` from the command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from state.store import schema_head
from syncagent.cli import app

runner = CliRunner()


def test_upgrade_then_status_on_an_empty_db_prints_friendly_empty_tables(
    state_url: str,
) -> None:
    upgraded = runner.invoke(app, ["db", "upgrade", "--state", state_url])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded to revision {schema_head()}" in upgraded.output
    again = runner.invoke(app, ["db", "upgrade", "--state", state_url])
    assert f"already at revision {schema_head()}" in again.output
    shown = runner.invoke(app, ["status", "--state", state_url])
    assert shown.exit_code == 0, shown.output
    assert "no runs yet" in shown.output and "Outbox" in shown.output
    as_json = json.loads(runner.invoke(app, ["status", "--state", state_url, "--json"]).output)
    assert as_json["runs"] == [] and as_json["dead_letters"] == 0


def test_status_before_upgrade_says_what_to_run(sqlite_url: str) -> None:
    result = runner.invoke(app, ["status", "--state", sqlite_url])
    assert result.exit_code == 1
    assert "syncagent db upgrade" in result.output
