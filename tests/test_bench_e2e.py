"""bench/e2e.py's backfill runs in a child process as `sync --once` would, so the `run` whose
form-fill latency it then measures starts from what that process kept.

The latency regression of issue 18 was this: the child ran the cycle but never saved the
connectors' usage (`sync --once` does), so the `run` after it did not know when HubSpot had
stamped the agent's own writes. Its sweeps re-read every contact the backfill wrote inside
the lookback window, 200 a search at 5 searches a second: a 20k backfill's cycles grew to
25-40 s, longer than the 10 s interval, and the form fill waited for them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from state.runs import Key
from state.store import StateStore

ROOT = Path(__file__).resolve().parents[1]


def test_the_bench_backfill_keeps_the_usage_sync_once_keeps(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from syncagent.sandbox.server import start_sandbox

    sys.path.insert(0, str(ROOT / "bench"))
    import e2e

    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(state_url).upgrade()
    with start_sandbox(leads=40, seed=7) as sandbox:
        e2e.child_cycle(sandbox.url, state_url)
    assert '"report"' in capsys.readouterr().out
    usage = StateStore(state_url).runs.get_value(Key.API_USAGE, {}) or {}
    # the moments HubSpot stamped the backfill's own contact writes: the next process's
    # sweeps leave them out of their re-read window (connectors/hubspot/own_writes.py)
    assert usage.get("hubspot", {}).get("own_writes", {}).get("contacts"), usage.keys()
