"""Prompt shutdown (issue 10): SIGTERM during a total HubSpot hang ends `syncagent run` with
exit 0 within the HTTP timeout plus 2 s. Retry and rate-limit waits watch the stop event, so
only the request in flight (bounded by the timeout) is waited for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from state.store import StateStore
from tests.e2e.conftest import MAPPINGS
from tests.fixtures.sandbox import SandboxFactory

TIMEOUT_SECONDS = 3.0


def _hangs_injected(stats: dict[str, object]) -> int:
    return sum(int(f["count"]) for f in stats["faults_injected"]  # type: ignore[attr-defined]
               if f["system"] == "hubspot" and f["fault"] == "hang")


def test_sigterm_during_a_total_hubspot_hang_exits_0_within_timeout_plus_2s(
        sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    sandbox = sandbox_factory(leads=30, seed=41,
                              faults={"hubspot": {"rate_hang": 1.0, "hang_seconds": 300}})
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore(state_url).upgrade()
    env = {**os.environ, "SYNCAGENT_HUBSPOT__TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
           "SYNCAGENT_LOG_FORMAT": "json"}
    command = [str(Path(sys.executable).parent / "syncagent"), "run", "--sandbox", sandbox.url,
               "--state", state_url, "--mappings", str(MAPPINGS)]
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _hangs_injected(sandbox.stats()) == 0:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the agent never reached HubSpot"
            time.sleep(0.1)
        time.sleep(0.5)  # inside the hanging request
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        elapsed = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert code == 0, log[-2000:]
    assert elapsed <= TIMEOUT_SECONDS + 2, f"took {elapsed:.1f} s after SIGTERM"
    assert "Traceback" not in log
