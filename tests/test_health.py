"""`status --check`: 0 healthy, 1 unhealthy (with every reason), 2 when it cannot tell."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from state.store import StateStore
from syncagent.cli import app
from syncagent.health import unhealthy_reasons
from syncagent.settings import HealthSettings

NOW = datetime(2026, 9, 14, 6, 30, tzinfo=UTC)
INTERVAL = 60


def _run(run_id: int, status: str, minutes_ago: float, **counts: Any) -> dict[str, Any]:
    finished = NOW - timedelta(minutes=minutes_ago)
    return {"id": run_id, "status": status, "started_at": finished - timedelta(seconds=5),
            "finished_at": finished, "counts": counts,
            "errors": [{"message": "HubSpot said no"}] if status == "failed" else []}


def _judge(*runs: dict[str, Any], health: HealthSettings | None = None) -> list[str]:
    completed = [r["finished_at"] for r in runs if r["status"] in ("ok", "partial")]
    summary = {"runs": list(runs), "last_completed_at": max(completed) if completed else None}
    return unhealthy_reasons(summary, NOW, INTERVAL, health or HealthSettings())


def test_a_fresh_clean_run_is_healthy() -> None:
    assert _judge(_run(2, "ok", 1, rejected=0, dead_letters=4),
                  _run(1, "ok", 2, dead_letters=4)) == []


def test_each_unhealthy_condition_is_named() -> None:
    assert _judge() == ["no cycle has finished yet"]
    (failed,) = _judge(_run(3, "failed", 0.5), _run(2, "ok", 1))
    assert "run 3" in failed and "HubSpot said no" in failed
    (stale,) = _judge(_run(1, "ok", 3 * INTERVAL / 60 + 2))
    assert "more than 3 intervals ago" in stale
    (grew,) = _judge(_run(2, "ok", 1, dead_letters=9), _run(1, "ok", 2, dead_letters=4))
    assert "grew from 4 to 9" in grew
    (too_many,) = _judge(_run(1, "partial", 1, rejected=11),
                         health=HealthSettings(max_rejected=10))
    assert "rejected 11 record(s)" in too_many
    assert _judge(_run(1, "partial", 1, rejected=10), health=HealthSettings(max_rejected=10)) \
        == []


def test_a_first_cycle_under_way_is_healthy_only_while_its_process_holds_the_lease() -> None:
    """A long first backfill outlasts any health-check start period; a killed one must not
    look alive for ever."""
    running = {"id": 1, "status": "running", "holder": "host:42", "started_at": NOW,
               "finished_at": None, "counts": {}, "errors": []}

    def judge(lease_holder: str, expires_in_s: float) -> list[str]:
        lease = {"name": "scheduler", "holder": lease_holder,
                 "expires_at": (NOW + timedelta(seconds=expires_in_s)).replace(tzinfo=None)}
        summary = {"runs": [running], "last_completed_at": None, "leases": [lease]}
        return unhealthy_reasons(summary, NOW, INTERVAL, HealthSettings())

    assert judge("host:42", 30) == []
    assert judge("host:42", -1) == ["no cycle has finished yet"]
    assert judge("host:7", 30) == ["no cycle has finished yet"]


def test_check_exits_2_without_a_state_db_and_creates_none(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    result = CliRunner().invoke(app, ["status", "--check", "--state", f"sqlite:///{missing}"])
    assert result.exit_code == 2 and "no state DB" in result.stderr
    assert not missing.exists()
    StateStore(f"sqlite:///{tmp_path / 'empty.db'}").schema_revision()  # a file, no schema
    empty = CliRunner().invoke(app, ["status", "--check", "--state",
                                     f"sqlite:///{tmp_path / 'empty.db'}"])
    assert empty.exit_code == 2 and "syncagent db upgrade" not in empty.stdout


def test_check_exits_1_with_reasons_and_0_when_healthy(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    run = store.runs.start(holder="h")
    store.runs.finish(run, status="failed", counts={}, api_calls={},
                      errors=[{"message": "salesforce login refused"}])
    sick = CliRunner().invoke(app, ["status", "--check", "--state", state_url])
    assert sick.exit_code == 1
    assert "salesforce login refused" in sick.stderr and "no cycle has completed" in sick.stderr
    run = store.runs.start(holder="h")
    store.runs.finish(run, status="ok", counts={"rejected": 0, "dead_letters": 0},
                      api_calls={}, errors=[])
    well = CliRunner().invoke(app, ["status", "--check", "--state", state_url])
    assert well.exit_code == 0 and "healthy" in well.stdout
