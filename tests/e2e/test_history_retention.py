"""`sync` prunes run history past `retention_days` after its cycle, and only then."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from state import models as m
from state.store import StateStore
from tests.e2e.clitools import Cli, copy_mappings
from tests.fixtures.sandbox import SandboxFactory

LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)


def _old_run_and_sample(store: StateStore) -> None:
    with store.sessions.write() as session:
        session.execute(insert(m.Run), [{"kind": "cycle", "started_at": LONG_AGO,
                                         "finished_at": LONG_AGO, "status": "ok", "counts": {},
                                         "api_calls": {}, "errors": []}])
        session.execute(insert(m.ChangeLatency), [{
            "system": "hubspot", "day": LONG_AGO.date(), "changed_at": LONG_AGO,
            "done_at": LONG_AGO, "seconds": 1.0}])


def _history(store: StateStore) -> tuple[list[datetime], set[date]]:
    with store.sessions.read() as session:
        runs = sorted(session.scalars(select(m.Run.started_at)))
        days = set(session.scalars(select(m.ChangeLatency.day)))
    return runs, days


@pytest.mark.parametrize("retention", ["180", "0"])
def test_sync_prunes_old_history_unless_retention_is_off(
        sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        retention: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNCAGENT_RETENTION_DAYS", retention)
    cli = Cli(sandbox_factory(leads=40, seed=8117).url, f"sqlite:///{tmp_path / 'state.db'}",
              copy_mappings(tmp_path / "mappings"))
    assert cli("db", "upgrade").exit_code == 0
    store = StateStore(cli.state_url)
    _old_run_and_sample(store)

    report = cli.json("sync", "--once")

    runs, days = _history(store)
    assert report["status"] in {"ok", "partial"}, report
    if retention == "0":
        assert runs[0] == LONG_AGO and len(runs) == 2
        assert LONG_AGO.date() in days
    else:
        assert len(runs) == 1 and runs[0] > LONG_AGO, "this cycle's run stays"
        assert LONG_AGO.date() not in days
