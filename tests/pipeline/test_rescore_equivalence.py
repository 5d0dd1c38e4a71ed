"""A rescore through the fast paths stores exactly what it stored through the plain paths
(tests/pipeline/plain_paths.py): the same decisions with the same reasons, the same outbox
rows, stage history, SLA timers, tasks, due times and routing state, on SQLite and Postgres.

Two copies of one seeded org (bench/scale_seed.py, with messy records added) are rescored
twice each, a few days apart (the second pass has stored decisions to compare with): one
copy as the code runs, the other with the plain paths patched in."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bench.scale import OfflineConnector
from bench.scale_seed import seed
from connectors.registry import registered
from state.scratch import scratch_schema
from state.store import MirrorRow, StateStore
from syncagent.engine import load_rules, model
from syncagent.pipeline import decide, plan, quarantine
from syncagent.pipeline.cycle import Agent, CycleOptions, run_cycle
from tests.fixtures.postgres import POSTGRES_URL, postgres_skip_reason
from tests.pipeline import plain_paths as plain

ROOT = Path(__file__).resolve().parents[2]
# the module (the package's ``evaluate`` is the function of that name)
ENGINE_EVALUATE = importlib.import_module("syncagent.engine.evaluate")
PERSONS = 240
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TABLES = {
    "decisions": "SELECT person_id, grade, score, segment, stage, owner, track, mql_date, "
                 "reasons, evaluated_at FROM decisions ORDER BY person_id",
    "outbox": "SELECT system, object, operation, remote_id, person_id, fields, idempotency_key, "
              "status, attempts, changed_at FROM outbox ORDER BY idempotency_key",
    "persons": "SELECT id, dirty, due_at FROM persons ORDER BY id",
    "stage_history": "SELECT key, person_id, at, from_stage, to_stage, cause, actor, detail "
                     "FROM stage_history ORDER BY key",
    "sla_timers": "SELECT * FROM sla_timers ORDER BY key",
    "tasks": "SELECT * FROM handoff_tasks ORDER BY key",
    "flags": "SELECT kind, key, detail FROM data_quality ORDER BY key",
    "routing": "SELECT value FROM agent_state WHERE name = 'routing_state'",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty state DBs of one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fast.db'}", f"sqlite:///{tmp_path / 'plain.db'}"
        return
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    with scratch_schema(POSTGRES_URL, "eqf") as fast, scratch_schema(POSTGRES_URL, "eqp") as slow:
        yield fast, slow


def _plain_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ENGINE_EVALUATE, "map_person", plain.map_person)
    monkeypatch.setattr(quarantine, "record_problems", plain.record_problems)
    monkeypatch.setattr(decide, "read_values", plain.read_values)
    monkeypatch.setattr(plan, "remote_values", plain.remote_values)
    monkeypatch.setattr(plan, "same_value", plain.same_value)
    monkeypatch.setattr(plan, "_changes", plain.changes)
    monkeypatch.setattr(decide, "same_value", plain.same_value)
    monkeypatch.setattr(model, "_jsonable", plain._jsonable)


def _seeded(url: str) -> StateStore:
    store = StateStore(url)
    store.upgrade()
    seed(store, PERSONS, NOW - timedelta(hours=1))
    _messy(store)
    return store


def _messy(store: StateStore) -> None:
    """Harder input than the seed's: a HubSpot contact newer than its Lead (two-way fields),
    blanks and whitespace, aliases, values the agent writes held in another case, numbers as
    text and beyond any field, a phone without a country code, a deleted record, a second
    contact of one person (newer, with blanks where the older one has values)."""
    later = NOW - timedelta(minutes=30)
    leads = {r.remote_id: r for r in store.mirror.records("salesforce", "Lead")}
    contacts = {r.remote_id: r for r in store.mirror.records("hubspot", "contacts")}
    changed: list[MirrorRow] = []
    for n, (rid, row) in enumerate(sorted(leads.items())[:40]):
        edits: dict[str, Any] = [
            {"Title": "   ", "Country": "united states", "NumberOfEmployees": "12,000"},
            {"AnnualRevenue": "$1.5M", "Phone": "(555) 010-9999", "Industry": ""},
            {"NumberOfEmployees": "9" * 80, "Email": " MiXed@Example.COM ", "State": None},
            {"Country": "Deutschland", "Title": "Chief Marketing Officer", "Status": "Working"},
        ][n % 4]
        changed.append(MirrorRow("salesforce", "Lead", rid, {**row.fields, **edits}, later,
                                 email_key=row.email_key))
    for n, (rid, row) in enumerate(sorted(contacts.items())[:40]):
        edits = {"jobtitle": "VP Marketing", "country": "UK", "city": " ",
                 "lifecyclestage": "marketingqualifiedlead"} if n % 2 else {
            "firstname": "", "lifecyclestage": "SUBSCRIBER", "lead_grade": "b+"}
        changed.append(MirrorRow("hubspot", "contacts", rid, {**row.fields, **edits},
                                 later + timedelta(minutes=n % 3), deleted=n % 7 == 3,
                                 email_key=row.email_key))
        if n % 5 == 0:
            twin = f"9{rid}"
            changed.append(MirrorRow("hubspot", "contacts", twin, {
                **row.fields, "hs_object_id": twin, "jobtitle": "", "city": None,
                "country": "  "}, later + timedelta(minutes=5), email_key=row.email_key))
            store.persons.link([("hubspot", "contacts", twin, _person_of(store, rid),
                                 "email")])
    store.mirror.upsert(changed, later)


def _person_of(store: StateStore, contact_id: str) -> int:
    return store.persons.links_of([("hubspot", "contacts", contact_id)])[
        ("hubspot", "contacts", contact_id)]


def _rescored(store: StateStore) -> list[dict[str, list[tuple[Any, ...]]]]:
    """Two rescores three days apart; what each left in the tables."""
    connectors: dict[str, Any] = {system: OfflineConnector(profile)
                                  for system, profile in registered().items()
                                  if profile.connect is not None}
    agent = Agent(store, connectors, load_rules(ROOT / "mappings"), holder="eq",
                  clock=lambda: NOW)
    snapshots = []
    for days in (0, 3):
        agent.clock = lambda days=days: NOW + timedelta(days=days)  # type: ignore[misc]
        report = run_cycle(agent, options=CycleOptions(rescore=True, pull=False, push=False))
        assert report.persons_evaluated > 0 and report.status == "ok"
        with store.engine.connect() as connection:
            snapshots.append({name: [tuple(row) for row in connection.execute(text(query))]
                              for name, query in TABLES.items()})
    return snapshots


def test_a_rescore_stores_what_the_plain_paths_store(two_urls: tuple[str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fast_url, plain_url = two_urls
    fast_store, plain_store = _seeded(fast_url), _seeded(plain_url)
    try:
        fast = _rescored(fast_store)
        with monkeypatch.context() as patched:
            _plain_paths(patched)
            slow = _rescored(plain_store)
    finally:
        fast_store.dispose()
        plain_store.dispose()
    for fast_pass, slow_pass in zip(fast, slow, strict=True):
        assert fast_pass["decisions"], "the seeded persons were evaluated"
        assert fast_pass["outbox"], "the rescore planned writes"
        for name in TABLES:
            assert fast_pass[name] == slow_pass[name], name
