"""rules-impact: the live rules against a proposed copy, on one person whose score is worked
out by hand (a campaign response at the report's moment: no decay; recency 15 points)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from state import models as m
from state.store import StateStore
from syncagent.engine.loader import load_rules
from syncagent.reports import Options, ReportSource
from syncagent.reports.impact import rules_impact, score_band
from syncagent.reports.model import RulesChange
from tests.reports.conftest import MAPPINGS, NOVEMBER, NOW, SEEN, seed


@pytest.fixture
def one_lead(state_url: str) -> Iterator[StateStore]:
    store = StateStore(state_url)
    store.upgrade()
    seed(store, [
        m.Person(id=7, email_key="kim@example.com", created_at=SEEN, dirty=False),
        m.MirrorRecord(system="salesforce", object="Lead", remote_id="00Q7",
                       fields={"Id": "00Q7", "Email": "kim@example.com", "LastName": "Kim",
                               "Company": "Example"},
                       modstamp=SEEN, deleted=False, last_seen_at=SEEN, agent_written={},
                       email_key="kim@example.com"),
        m.PersonLink(system="salesforce", object="Lead", remote_id="00Q7", person_id=7,
                     linked_by="email", created_at=SEEN),
        m.Activity(system="salesforce", source_id="cm7", kind="campaign_response",
                   occurred_at=NOW, ref_object="Lead", ref_id="00Q7", person_id=7,
                   details={"campaign": "701A"}),
    ])
    yield store
    store.dispose()


def _proposed(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "proposed"
    shutil.copytree(MAPPINGS, folder)
    scoring = folder / "scoring.yaml"
    text = scoring.read_text()
    assert old in text
    scoring.write_text(text.replace(old, new))
    return folder


def _impact(store: StateStore, proposed: Path) -> dict[str, list[tuple[object, ...]]]:
    change = RulesChange(load_rules(proposed))
    result = rules_impact(ReportSource(store, load_rules(MAPPINGS)), NOVEMBER,
                          Options(now=NOW, change=change))
    return {t.title: [tuple(r[c] for c in t.columns) for r in t.rows] for t in result.tables}


def test_the_same_rules_change_nothing(one_lead: StateStore, tmp_path: Path) -> None:
    tables = _impact(one_lead, _proposed(tmp_path, "version: 1", "version: 1"))
    assert [(part, changed) for part, _n, changed, _share in tables["summary"]] == [
        ("grade", 0), ("stage", 0), ("segment", 0), ("owner", 0), ("track", 0)]
    assert all(before == after for _part, before, after, _n in tables["transitions"])


def test_more_points_for_a_response_move_its_score_band_and_segment(
        one_lead: StateStore, tmp_path: Path) -> None:
    proposed = _proposed(tmp_path, "kind: campaign_response, points: 10,",
                         "kind: campaign_response, points: 60,")
    tables = _impact(one_lead, proposed)
    # before: 10 + recency 15 = 25; after: 60 (the events cap) + 15 = 75
    bands = {band: (old, new) for band, old, new in tables["score bands"]}
    assert bands["25-49"] == (1, 0) and bands["75-99"] == (0, 1)
    assert sum(old for old, _new in bands.values()) == 1
    assert tables["score statistics"][0] == ("mean", 25, 75)
    # intent_min_score 50: a low-fit lead moves from "leave" to "other-offers"
    assert ("segment", "leave", "other-offers", 1) in tables["transitions"]
    assert tables["summary"][0][:3] == ("grade", 1, 0)


def test_score_bands_at_their_edges() -> None:
    assert [score_band(s) for s in (None, -5, 0, 24, 25, 199.5, 200, 10_000)] == [
        "(none)", "< 0", "0-24", "0-24", "25-49", "175-199", "200+", "200+"]
