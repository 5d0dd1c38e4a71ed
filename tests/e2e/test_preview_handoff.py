"""`syncagent preview --email` shows what the state DB holds of a person's handoff loop: every
stored timer step with its status (pending, fired, cancelled), whom it was for, and the
alerts the agent sent, newest first (acceptance 4 of issue #14; test_sla_loop.py checks the
same on steps the loop itself fired)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

from typer.testing import CliRunner, Result

from state.handoff import CANCELLED, FIRED, PENDING, HandoffRows, TaskRecord, TimerRow
from syncagent.cli import app
from syncagent.pipeline.cycle import run_cycle
from tests.e2e.conftest import MAPPINGS, World, WorldFactory


def _person_with_email(world: World) -> tuple[int, str]:
    store = world.agent.store
    links = store.persons.links()
    shared = Counter(email for *_ref, email in store.mirror.email_index())
    for system, obj, rid, email in sorted(store.mirror.email_index()):
        pid = links.get((system, obj, rid))
        if pid is not None and email and shared[email] == 1:
            return pid, email
    raise AssertionError("the seed should hold persons with an e-mail of their own")


def _preview(world: World, email: str, *extra: str) -> Result:
    result = CliRunner().invoke(app, ["preview", "--email", email, "--state", world.state_url,
                                      "--mappings", str(MAPPINGS), *extra],
                                env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return result


def test_preview_shows_stored_steps_of_every_status_and_past_alerts(
    world_factory: WorldFactory,
) -> None:
    world = world_factory(leads=60)
    run_cycle(world.agent)
    pid, email = _person_with_email(world)
    users = world.salesforce().query_all(
        "SELECT Id, Name FROM User WHERE IsActive = true ORDER BY Id")["records"]
    owner, manager = users[1], users[2]
    start = world.sandbox.ctx.clock.now() - timedelta(days=2)

    def step(kind: str, hours: int, status: str, to: str) -> TimerRow:
        due = start + timedelta(hours=hours)
        return TimerRow(f"sla:{pid}:{kind}:{start:%Y%m%dT%H%M%SZ}", pid, kind, start, due, to,
                        status, due if status == FIRED else None, {"message": kind})

    alerts = [TaskRecord(f"{pid}:hot-lead-acted:{n}", pid, "alert", "hot-lead-acted",
                         "salesforce", owner["Id"], start + timedelta(hours=n), {})
              for n in (1, 30)]
    never_sent = TaskRecord(f"{pid}:hot-lead-form:1", pid, "alert", "hot-lead-form", None,
                            None, start + timedelta(hours=2),
                            {"subject": "hot-lead-form", "not_given": "owned by a queue"})
    remind = step("remind", 4, FIRED, owner["Id"])
    world.agent.store.commit_evaluation([], [], {}, {}, handoff=HandoffRows(
        timers=[remind, step("escalate", 24, CANCELLED, manager["Id"]),
                step("reassign", 96, PENDING, owner["Id"])],
        tasks=[*alerts, never_sent, TaskRecord(remind.key, pid, "remind", "remind",
                                               "salesforce", owner["Id"], start, {})]))

    shown = json.loads(_preview(world, email, "--json").stdout)
    assert [(t["kind"], t["status"]) for t in shown["timers"]] == \
        [("remind", FIRED), ("escalate", CANCELLED), ("reassign", PENDING)], "by due time"
    assert shown["timers"][0]["fired_at"] and shown["timers"][1]["fired_at"] is None
    assert shown["timers"][0]["task"]["system"] == "salesforce", "the step's task"
    assert shown["timers"][1]["task"] is None
    assert [(a["name"], a["system"]) for a in shown["past_alerts"]] == \
        [("hot-lead-acted", "salesforce"), ("hot-lead-form", None),
         ("hot-lead-acted", "salesforce")], "alerts only (no SLA task), newest first"

    table = _preview(world, email).stdout
    assert "Stored SLA timers" in table
    for kind, status in (("remind", FIRED), ("escalate", CANCELLED), ("reassign", PENDING)):
        assert any(kind in line and status in line for line in table.splitlines()), table
    assert any("remind" in line and "a salesforce task" in line
               for line in table.splitlines()), table
    assert owner["Name"] in table and manager["Name"] in table, "recipients by name"
    assert table.count("past alert") == 3
    assert "not sent: owned by a queue" in table
