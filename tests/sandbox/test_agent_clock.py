"""`sync --sandbox URL` runs at the sandbox's simulated time: hours a simulation skips pass for
the agent as well (its cycle starts, and so its timers' 'now', at the sandbox's clock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from state.store import StateStore
from tests.fixtures.sandbox import SandboxFactory

ROOT = Path(__file__).resolve().parents[2]


def test_a_sync_against_a_sandbox_ten_days_ahead_starts_ten_days_ahead(
        sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(leads=30, seed=5)
    sandbox.simulate(hours=240, events=0, rep_actions=0, calls=0)
    state = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(state).upgrade()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNCAGENT_")}
    done = subprocess.run(
        [sys.executable, "-m", "syncagent", "sync", "--once", "--json", "--sandbox",
         sandbox.url, "--state", state, "--mappings", str(ROOT / "mappings")],
        cwd=tmp_path, text=True, capture_output=True, timeout=600,
        env={**clean, "SYNCAGENT_LOG_LEVEL": "warning"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["status"] == "ok"
    [run] = StateStore(state).runs.recent(1)
    started = run["started_at"]
    started = started if started.tzinfo else started.replace(tzinfo=UTC)
    ahead = started - datetime.now(UTC)
    assert timedelta(hours=239) < ahead < timedelta(hours=241)
