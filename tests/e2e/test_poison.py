"""Poison records never stop the agent (issue 10): a sandbox seeded with overflowing numbers,
NaN and infinity, NUL bytes, lone surrogates and megabyte texts completes every cycle, on
SQLite and on PostgreSQL; every other person is written, and each poison value is listed once
as a data-quality item naming the record and the field."""

from __future__ import annotations

import json
import threading
from typing import Any

from syncagent.pipeline.cycle import CycleOptions, run_cycle
from syncagent.sandbox.poison import add_poison
from tests.e2e.conftest import WorldFactory

GRADED = ("Lead_Grade__c", "Lead_Score__c")


def test_poison_records_are_quarantined_and_every_other_person_is_written(
        world_factory: WorldFactory, state_url: str) -> None:
    world = world_factory(leads=70, seed=29, state_url=state_url)
    planted = add_poison(world.sandbox.ctx)
    poisoned_leads = {p.record_id for p in planted if p.object == "Lead"}
    reports = [run_cycle(world.agent, threading.Event(), CycleOptions()) for _ in range(3)]
    assert all(r.errors == [] for r in reports), [r.errors for r in reports]
    assert reports[0].persons_evaluated > 50 and reports[0].written["salesforce"] > 40

    leads = world.salesforce().query_all(
        "SELECT Id, IsConverted, Lead_Grade__c, Lead_Score__c FROM Lead")["records"]
    bare = [lead["Id"] for lead in leads if not lead["IsConverted"]
            and lead["Id"] not in poisoned_leads and any(lead[f] in (None, "") for f in GRADED)]
    assert bare == [], f"{len(bare)} healthy leads without grade/score, e.g. {bare[:3]}"

    items = [i for i in world.agent.store.flags.items(limit=10_000)
             if i["kind"] == "poison_value"]
    listed = [(i["detail"]["system"], i["detail"]["object"], i["detail"]["record_id"],
               i["detail"]["field"]) for i in items]
    expected = [(p.system, p.object, p.record_id, p.field) for p in planted]
    assert sorted(listed) == sorted(expected), f"each poison value exactly once: {listed}"
    assert all(i["detail"]["reason"] for i in items)
    for item in items:  # the detail names the value's problem, never the value
        assert "poison poison" not in str(item) and "\x00" not in str(item)
    listed_by_cli = _data_quality_command(state_url)
    assert listed_by_cli["counts"]["poison_value"] == len(planted)


def _data_quality_command(state_url: str) -> dict[str, Any]:
    from typer.testing import CliRunner

    from syncagent.cli import app

    result = CliRunner().invoke(app, ["data-quality", "--state", state_url, "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_dry_run_survives_poison_records(world_factory: WorldFactory) -> None:
    world = world_factory(leads=40, seed=31)
    add_poison(world.sandbox.ctx)
    world.agent.write = False
    planned: list[Any] = []
    report = run_cycle(world.agent, threading.Event(),
                       CycleOptions(on_plans=lambda plans: planned.extend(plans)))
    assert report.persons_evaluated > 30 and len(planned) == report.persons_evaluated
    assert report.written == {"salesforce": 0, "hubspot": 0}
