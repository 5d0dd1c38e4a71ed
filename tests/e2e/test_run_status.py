"""Issue 9, seen 2 and 4, and issue 10, stop paths: honest run status, the error ledger, the
`run` log line, and a stop after the first cycle when no retry can help. Through the real CLI
against the sandbox (`run` as a subprocess: it installs signal handlers)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from syncagent.sandbox.server import RunningSandbox
from tests.e2e.clitools import Cli, copy_mappings, restore_mappings
from tests.fixtures.sandbox import SandboxFactory


def mistype_industry(mappings: Path) -> None:
    fields = mappings / "fields.yaml"
    text = fields.read_text(encoding="utf-8")
    assert "{lead: Industry}" in text
    fields.write_text(text.replace("{lead: Industry}", "{lead: Industy}"), encoding="utf-8")


@pytest.fixture
def cli_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)

    def make(sandbox: RunningSandbox) -> Cli:
        tool = Cli(sandbox.url, f"sqlite:///{tmp_path / 'state.db'}",
                   copy_mappings(tmp_path / "mappings"))
        assert tool("db", "upgrade").exit_code == 0
        return tool

    return make


def test_rejections_make_a_partial_run_and_the_ledger_counts_groups_replans_and_discards(
    sandbox_factory: SandboxFactory, cli_for: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli: Cli = cli_for(sandbox_factory(leads=900, seed=4309))
    mistype_industry(cli.mappings)
    # `sync` refuses a mistyped mapped field before any write (tests/e2e/test_setup.py); this
    # test is about what the ledger does once such rejections exist, so it skips that check.
    monkeypatch.setattr("syncagent.commands.pipeline.refuse_while_blocked", lambda _s: None)
    report = cli.json("sync", "--once")
    assert report["status"] == "partial" and report["rejected"] > 500, report
    check = cli("status", "--check")
    assert check.exit_code == 1 and f"rejected {report['rejected']} record(s)" in check.stderr

    ledger = cli.json("errors")
    assert ledger["total"] == report["rejected"], "true totals, never capped"
    (group,) = ledger["groups"]
    assert (group["system"], group["code"], group["field"]) == (
        "salesforce", "INVALID_FIELD", "Industy")
    assert group["count"] == ledger["total"] and group["first_seen"] <= group["last_seen"]
    listed = cli.json("errors", "--code", "INVALID_FIELD", "--limit", "5")
    assert listed["total"] == ledger["total"] and len(listed["letters"]) == 5
    assert {letter["field"] for letter in listed["letters"]} == {"Industy"}
    discarded = cli("errors", "--discard", str(listed["letters"][-1]["id"]))
    assert "1 dead letter(s) discarded" in discarded.stdout
    assert cli.json("errors")["total"] == report["rejected"] - 1

    restore_mappings(cli.mappings)
    replanned = cli("errors", "--retry-code", "INVALID_FIELD")
    assert replanned.exit_code == 0 and "re-evaluated" in replanned.stdout
    after = cli.json("sync", "--once")
    assert after["status"] == "ok" and after["rejected"] == 0, "the stale payload was re-sent"
    # Re-planned from the current mappings. Nothing is left to write: field isolation landed
    # each record without the mistyped field in the first sync (grade, score, stage included).
    assert after["persons_evaluated"] >= 1, after
    assert cli.json("errors")["total"] == 0
    assert cli("status", "--check").exit_code == 0


def test_duplicate_emails_are_listed_by_data_quality_with_their_record_ids(
    sandbox_factory: SandboxFactory, cli_for: Any,
) -> None:
    sandbox = sandbox_factory(leads=120, seed=4411)
    cli: Cli = cli_for(sandbox)
    from tests.e2e.conftest import World

    sf = World(sandbox, None, cli.state_url).salesforce()  # type: ignore[arg-type]
    ids = [sf.Lead.create({"LastName": f"Twin {n}", "Company": "Twins Ltd",
                           "Email": "same.person@twins.example"})["id"] for n in (1, 2)]
    cli.json("sync", "--once")
    listed = cli.json("data-quality")
    twins = [item for item in listed["items"] if item["kind"] == "ambiguous_email"
             and "same.person@twins.example" in item["key"]]
    assert len(twins) == 1, listed
    named = {record[2] for record in twins[0]["detail"]["records"]}
    assert set(ids) <= named
    table = cli("data-quality")
    assert table.exit_code == 0 and "same.person@twins.example" in table.stdout


def _config(sandbox: RunningSandbox, tmp_path: Path, **salesforce: Any) -> Path:
    info = sandbox.info
    sf, hs = info["salesforce"], info["hubspot"]
    config = {
        "state_url": f"sqlite:///{tmp_path / 'state.db'}", "mappings_dir": str(tmp_path / "m"),
        "ca_bundle": str(info["ca_cert"]), "interval_seconds": 5, "jitter_seconds": 0,
        "log_format": "json",
        "salesforce": {"auth": "password", "login_url": sf["instance_url"],
                       "instance_url": sf["instance_url"], "username": sf["username"],
                       "password": sf["password"], "security_token": sf["security_token"],
                       "consumer_key": sf["consumer_key"],
                       "consumer_secret": sf["consumer_secret"], **salesforce},
        "hubspot": {"base_url": hs["base_url"], "access_token": hs["access_token"]}}
    path = tmp_path / "syncagent.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    copy_mappings(tmp_path / "m")
    _agent("db", "upgrade", config=path)
    return path


def _agent(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syncagent", *args, "--config", str(config)],
                          cwd=config.parent, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1"})


def test_run_logs_one_line_per_cycle_with_the_report_figures(
    sandbox_factory: SandboxFactory, tmp_path: Path,
) -> None:
    # every Salesforce write refused by a validation rule: a partial cycle (a mistyped mapped
    # field no longer reaches the writes: `run` refuses to start, see tests/e2e/test_setup.py)
    config = _config(sandbox_factory(leads=150, seed=4513,
                                     faults={"salesforce": {"rate_reject": 1.0}}), tmp_path)
    agent = subprocess.Popen([sys.executable, "-m", "syncagent", "run", "--config", str(config)],
                             cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             text=True)
    finished = _first_event(agent, "cycle finished")
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(timeout=120) == 0
    assert finished["outcome"] == "partial" and finished["rejected"] > 0, finished
    for figure in ("pulled", "persons_evaluated", "written", "created", "retry_pending",
                   "dead_letters", "api_calls"):
        assert figure in finished, f"the run log line lacks {figure}: {finished}"


def _first_event(process: subprocess.Popen[str], event: str) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    assert process.stderr is not None
    for line in process.stderr:
        if time.monotonic() > deadline:
            break
        if line.startswith("{") and json.loads(line).get("event") == event:
            return dict(json.loads(line))
    process.kill()
    raise AssertionError(f"no '{event}' line before the process ended")


def test_a_wrong_password_stops_run_after_the_first_cycle_with_one_line(
    sandbox_factory: SandboxFactory, tmp_path: Path,
) -> None:
    config = _config(sandbox_factory(leads=80, seed=4617), tmp_path,
                     password="not-the-password")
    ran = _agent("run", config=config)
    assert ran.returncode == 1, ran.stderr[-3000:]
    lines = [line for line in ran.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert "Traceback" not in ran.stderr and "not-the-password" not in ran.stderr
    events = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    assert sum(e.get("event") == "cycle started" for e in events) == 1, "only one cycle"
    status = _agent("status", "--json", config=config)
    (run,) = json.loads(status.stdout)["runs"]
    assert run["status"] == "failed" and run["errors"], run


def test_an_unexpected_exception_anywhere_in_a_cycle_records_it_failed(
    sandbox_factory: SandboxFactory, cli_for: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cli: Cli = cli_for(sandbox_factory(leads=60, seed=4719))

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise ZeroDivisionError("a bug in matching")

    monkeypatch.setattr("syncagent.pipeline.cycle.match", broken)
    crashed = cli("sync", "--once")
    assert crashed.exit_code == 1
    monkeypatch.undo()
    (run,) = cli.json("status")["runs"]
    assert run["status"] == "failed" and run["errors"][0]["error"] == "ZeroDivisionError"
    assert "a bug in matching" not in json.dumps(run), "unknown error text is not stored"
    assert cli.json("sync", "--once")["status"] in ("ok", "partial")
