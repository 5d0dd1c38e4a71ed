"""A rescore stores each decision without its reasons text and its SLA timers (the
sla_timers table holds those), and the text rendered from what it stores is the text it
planned for the CRM's reasons field (Score_Reasons__c, score_reasons), on SQLite and
Postgres, in process and with evaluation workers; the demo shows that text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bench.scale import OfflineConnector
from bench.scale_seed import seed
from connectors.registry import registered
from state.scratch import scratch_schema
from state.store import StateStore
from syncagent.commands.demo import _explained
from syncagent.engine import load_rules
from syncagent.engine.reasons_text import reasons_text_of
from syncagent.pipeline.cycle import Agent, CycleOptions, run_cycle
from tests.fixtures.postgres import POSTGRES_URL, postgres_skip_reason

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
REASONS_FIELDS = {("salesforce", "Lead"): "Score_Reasons__c",
                  ("hubspot", "contacts"): "score_reasons"}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    with scratch_schema(POSTGRES_URL, "rtx") as scratch:
        yield scratch


@pytest.mark.parametrize("workers", [0, 2])
def test_the_stored_reasons_render_the_text_planned_for_the_crm(url: str, workers: int) -> None:
    store = StateStore(url)
    store.upgrade()
    seed(store, 160, NOW - timedelta(hours=1))
    connectors = {s: OfflineConnector(p) for s, p in registered().items()
                  if p.connect is not None}
    agent = Agent(store, connectors, load_rules(ROOT / "mappings"), holder="t",
                  workers=workers, clock=lambda: NOW)
    report = run_cycle(agent, options=CycleOptions(rescore=True, pull=False, push=False))
    assert report.status == "ok" and report.persons_evaluated == 160
    decisions = store.decisions.of()
    for row in decisions.values():
        assert "reasons_text" not in row["reasons"] and "sla" not in row["reasons"]
        assert row["reasons"]["state"]["stage"] == row["stage"]
    planned = _planned_texts(store)
    assert len(planned) > 100   # nearly every person's reasons are written somewhere
    for pid, texts in planned.items():
        assert texts == {reasons_text_of(decisions[pid]["reasons"])}
    best = _explained(decisions)
    assert best.startswith("Grade ") and best in {t for ts in planned.values() for t in ts}
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM sla_timers")).scalar()
    store.dispose()


def _planned_texts(store: StateStore) -> dict[int, set[str]]:
    """person id -> the reasons texts its outbox rows write."""
    out: dict[int, set[str]] = {}
    with store.engine.connect() as connection:
        for system, obj, pid, fields in connection.execute(text(
                "SELECT system, object, person_id, fields FROM outbox")):
            fields = json.loads(fields) if isinstance(fields, str) else fields
            name = REASONS_FIELDS.get((system, obj))
            if name in fields:
                out.setdefault(pid, set()).add(fields[name])
    return out
