"""Issue 9, seen 1: a nurture track naming a HubSpot list that does not exist must never wedge
the outbox. Through the real CLI against the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.clitools import Cli, break_list_references, copy_mappings, restore_mappings
from tests.fixtures.sandbox import SandboxFactory


def test_a_track_naming_a_missing_hubspot_list_dead_letters_its_writes_and_wedges_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    sandbox = sandbox_factory(leads=240, seed=4101)
    mappings = copy_mappings(tmp_path / "mappings")
    cli = Cli(sandbox.url, f"sqlite:///{tmp_path / 'state.db'}", mappings)
    assert cli("db", "upgrade").exit_code == 0
    cli.json("sync", "--once")
    assert break_list_references(mappings / "nurture.yaml") > 0

    rescored = cli.json("rescore")  # partial, not a traceback and not "ok"
    assert rescored["status"] == "partial" and rescored["rejected"] > 0, rescored
    assert cli.in_flight() == 0, "every claimed list write ended as done, retry or dead"
    runs = cli.json("status")["runs"]
    assert runs[0]["status"] == "partial" and runs[0]["counts"]["rejected"] > 0

    check = cli("status", "--check")
    assert check.exit_code == 1 and "dead letters grew" in check.stderr, check.stderr
    ledger = cli.json("errors")
    (missing,) = [g for g in ledger["groups"] if g["code"] == "LIST_NOT_FOUND"]
    assert missing["system"] == "hubspot" and missing["count"] == rescored["rejected"]
    assert "nurture.yaml" in missing["example_message"]

    broken_again = cli.json("sync", "--once")  # still broken: the agent keeps working
    assert broken_again["status"] in ("ok", "partial")

    restore_mappings(mappings)
    restored = cli.json("sync", "--once")
    assert restored["status"] == "ok" and restored["rejected"] == 0, restored
    discarded = cli("errors", "--discard-code", "LIST_NOT_FOUND")
    assert f"{missing['count']} dead letter(s) discarded" in discarded.stdout
    assert cli.json("errors")["total"] == 0
    status = cli.json("status")
    assert status["in_flight"] == 0 and status["outbox"].get("in_flight", 0) == 0
    healthy = cli("status", "--check")
    assert healthy.exit_code == 0, healthy.stderr
