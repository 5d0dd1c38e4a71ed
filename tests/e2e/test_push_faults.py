"""Issue 9: whatever raises inside push, the outbox never wedges.

An exception is injected at every step of push (finding the due groups, claiming, each
system's record writes, HubSpot list writes, recording results, updating the mirror, linking
created records). Each time: the cycle is recorded `failed` and `sync --once` exits 1; the
other system's writes still land; after the claim window no row is in flight; and the next
cycle, fault gone, exits 0. Issue 9, seen 10 (stuck claims after a kill) is the `complete`
case: the rows stay in flight, are shown, and are re-sent after the window without counting
re-sent creates as created.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.hubspot.connector import HubSpotConnector
from connectors.salesforce.connector import SalesforceConnector
from state.mirror import MirrorStore
from state.outbox import OutboxStore
from state.persons import PersonStore
from syncagent.sandbox.common import FaultProfile
from syncagent.sandbox.server import RunningSandbox, start_sandbox
from tests.e2e.clitools import Cli, age_claims, copy_mappings

PAST_ANY_CLAIM_WINDOW = 3600.0  # seconds; every window claim_window() derives is shorter
# where push calls the stores from: push itself, its recorder and the recording transaction
PUSH_MODULES = frozenset({"syncagent.pipeline.push", "syncagent.pipeline.recorder",
                          "state.recording"})

# step -> (class, method, only when push calls it)
STEPS: dict[str, tuple[type, str, bool]] = {
    "find due groups": (OutboxStore, "groups", True),
    "claim": (OutboxStore, "claim", True),
    "salesforce write": (SalesforceConnector, "write_packed", False),
    "hubspot write": (HubSpotConnector, "write", False),
    "hubspot list write": (HubSpotConnector, "change_list", False),
    "record results": (OutboxStore, "complete", True),
    "update the mirror": (MirrorStore, "record_written", True),
    "link created records": (PersonStore, "link", True),
}


class Injected(RuntimeError):
    """The fault these tests inject (not one of the project's own errors: a bug)."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    running = start_sandbox(leads=160, seed=4207, faults=FaultProfile(
        hubspot_requests_per_10s=1_000_000, hubspot_searches_per_second=1_000_000))
    yield running
    running.stop()


@pytest.fixture
def cli(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    sandbox.reset()  # every test starts from the seed: creates still to make, lists empty
    tool = Cli(sandbox.url, f"sqlite:///{tmp_path / 'state.db'}",
               copy_mappings(tmp_path / "mappings"))
    assert tool("db", "upgrade").exit_code == 0
    return tool


def inject(monkeypatch: pytest.MonkeyPatch, step: str) -> list[int]:
    """Make `step` raise from now on; returns a list that counts the faults raised."""
    owner, name, push_only = STEPS[step]
    real: Callable[..., Any] = getattr(owner, name)
    raised: list[int] = []

    def faulty(*args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__")
        if push_only and caller not in PUSH_MODULES:
            return real(*args, **kwargs)
        raised.append(1)
        raise Injected(f"injected into {step}")

    monkeypatch.setattr(owner, name, faulty)
    return raised


@pytest.mark.parametrize("step", list(STEPS))
def test_an_exception_at_any_push_step_leaves_nothing_in_flight_after_the_claim_window(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, step: str,
) -> None:
    raised = inject(monkeypatch, step)
    faulted = cli.json("sync", "--once", expect=1)
    assert raised, f"the backfill never reached '{step}': the test proves nothing"
    assert faulted["status"] == "failed", faulted
    runs = cli.json("status")["runs"]
    assert runs[0]["status"] == "failed" and runs[0]["errors"], runs[0]
    _other_system_still_wrote(step, faulted)

    monkeypatch.undo()
    age_claims(cli.state_url, PAST_ANY_CLAIM_WINDOW)
    assert cli.in_flight() == 0 or step == "record results"
    after = cli.json("sync", "--once")  # exits 0
    assert after["status"] in ("ok", "partial"), after
    assert cli.in_flight() == 0


def _other_system_still_wrote(step: str, report: dict[str, Any]) -> None:
    landed = {system: report["written"][system] + report["created"][system]
              for system in ("salesforce", "hubspot")}
    if step == "salesforce write":
        assert landed["hubspot"] > 0, report
    if step == "hubspot write":
        assert landed["salesforce"] > 0, report


def test_claims_left_by_a_dead_push_are_shown_then_resent_without_recounting_creates(
    cli: Cli, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A push that dies after its writes landed (here: the state DB refuses every result)
    leaves rows in flight, as a SIGKILL does."""
    inject(monkeypatch, "record results")
    monkeypatch.setattr(OutboxStore, "release", _refuse)
    cli.json("sync", "--once", expect=1)
    monkeypatch.undo()
    stuck = cli.in_flight()
    assert stuck > 0
    before_window = cli.json("sync", "--once")
    assert before_window["retry_pending"] >= stuck, "rows in flight are work still to do"
    assert cli.in_flight() == stuck, "a live claim is never taken from its holder"

    age_claims(cli.state_url, PAST_ANY_CLAIM_WINDOW)
    resent = cli.json("sync", "--once")
    assert resent["created"] == {"salesforce": 0, "hubspot": 0}, resent
    assert sum(resent["written"].values()) >= 1, resent
    assert cli.in_flight() == 0 and resent["retry_pending"] == 0


def _refuse(*_args: Any, **_kwargs: Any) -> int:
    raise Injected("the state DB is gone")
