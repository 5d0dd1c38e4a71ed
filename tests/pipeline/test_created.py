"""A person's creation time, from their mirrored records, reaches the engine: the scoring
rules' early bands count from it, and an unreadable one leaves every activity its own points."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from connectors.registry import registered
from state.store import ActivityRow, CursorState, MirrorRow, StateStore
from syncagent.engine import RoutingState, load_rules
from syncagent.pipeline.created import person_created
from syncagent.pipeline.decide import evaluate_persons, load_world
from syncagent.pipeline.match import match
from syncagent.pipeline.records import email_key

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def _row(system: str, obj: str, rid: str, **fields: object) -> MirrorRow:
    return MirrorRow(system, obj, rid, dict(fields), NOW, email_key=email_key(system, obj, fields))


def test_an_unreadable_or_missing_creation_field_is_unknown() -> None:
    profiles = registered()
    rows = [_row("salesforce", "Lead", "00Q1", Email="a@x.com", CreatedDate="yesterday"),
            _row("hubspot", "contacts", "501", email="a@x.com")]
    assert person_created(rows, profiles) is None


def test_the_crm_records_creation_wins_over_an_earlier_marketing_contact() -> None:
    profiles = registered()
    rows = [_row("hubspot", "contacts", "501", email="a@x.com",
                 createdate="2026-09-01T10:00:00.000Z"),
            _row("salesforce", "Lead", "00Q1", Email="a@x.com",
                 CreatedDate="2026-10-01T10:00:00.000+0000"),
            _row("salesforce", "Contact", "0031", Email="a@x.com",
                 CreatedDate="2026-10-05T10:00:00.000+0000")]
    assert person_created(rows, profiles) == datetime(2026, 10, 1, 10, 0, tzinfo=UTC)
    hubspot_only = person_created(rows[:1], profiles)
    assert hubspot_only == datetime(2026, 9, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "expected"), [
    (None, None), ("", None), ("   ", None), ("\x00", None), ("2026-10-01\x00", None),
    ("é", None), ("Z", None), ("x" * 100_000, None), (12345, None), (True, None),
    (" 2026-10-01 ", datetime(2026, 10, 1, tzinfo=UTC)),
    ("2026-10-01T10:00:00Z", datetime(2026, 10, 1, 10, tzinfo=UTC)),
    ("\t2026-10-01T12:00:00.000+0200\n", datetime(2026, 10, 1, 10, tzinfo=UTC)),
    ("2026-10-01T10:00:00", datetime(2026, 10, 1, 10, tzinfo=UTC)),
    (datetime(2026, 10, 1, 10), datetime(2026, 10, 1, 10, tzinfo=UTC))])
def test_a_creation_moment_is_read_whitespace_and_all_or_not_at_all(
        value: object, expected: datetime | None) -> None:
    from syncagent.pipeline.created import moment

    assert moment(value) == expected


def test_only_person_objects_count_toward_the_creation() -> None:
    """An object the profile does not list as a person (an account, a task) is not read,
    whatever its creation field says; a person object of the same system is."""
    profiles = registered()
    other = MirrorRow("salesforce", "Account", "001", {"CreatedDate": "2020-01-01"}, NOW)
    lead = _row("salesforce", "Lead", "00Q1", Email="a@x.com", CreatedDate="2026-10-01")
    assert person_created([other], profiles) is None
    assert person_created([other, lead], profiles) == datetime(2026, 10, 1, tzinfo=UTC)
    assert person_created([other, lead], {}) is None


@pytest.fixture
def store(sqlite_url: str) -> StateStore:
    store = StateStore(sqlite_url)
    store.upgrade()
    return store


def test_the_cycle_scores_an_early_opportunity_by_the_leads_creation(
        store: StateStore, tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    path = mappings / "scoring.yaml"
    doc = yaml.safe_load(path.read_text())
    rule = next(r for r in doc["activities"] if r["name"] == "opportunity-created")
    rule["early"] = [{"within_days_of_creation": 14, "points": 80}]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    rules = load_rules(mappings)
    created = NOW - timedelta(days=10)
    leads = [_row("salesforce", "Lead", "00Q1", Email="early@acme.com",
                  CreatedDate=created.isoformat()),
             _row("salesforce", "Lead", "00Q2", Email="unknown@acme.com")]
    opportunities = [ActivityRow("salesforce", f"opp{n}", "opportunity_created", NOW, "Lead",
                                 f"00Q{n}") for n in (1, 2)]
    store.commit_page("test", leads, opportunities, CursorState())
    match(store, NOW)
    links = store.persons.links()
    ids = sorted(set(links.values()))
    [chunk] = evaluate_persons(store, rules, [ids], load_world(store), NOW, RoutingState())
    reasons = {d.person_id: d.score.reasons for d in (p.decision for p in chunk.plans)}
    early = str(links[("salesforce", "Lead", "00Q1")])
    unknown = str(links[("salesforce", "Lead", "00Q2")])
    assert "opportunity-created within 14 days of creation: +80" in reasons[early]
    assert "opportunity-created: +50" in reasons[unknown]
