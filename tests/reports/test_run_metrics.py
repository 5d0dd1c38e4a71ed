"""`syncagent run --metrics-port`: the scheduler process answers /metrics while it runs, with
the cycle it just finished counted (through the real CLI against the sandbox)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_run_status import _config, _first_event
from tests.fixtures.sandbox import SandboxFactory


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_serves_metrics_of_its_own_cycles(sandbox_factory: SandboxFactory,
                                              tmp_path: Path) -> None:
    config = _config(sandbox_factory(leads=40, seed=4711), tmp_path)
    port = _free_port()
    agent = subprocess.Popen([sys.executable, "-m", "syncagent", "run", "--config", str(config),
                              "--metrics-port", str(port)],
                             cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                             text=True)
    try:
        finished = _first_event(agent, "cycle finished")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
            text = answer.read().decode()
    finally:
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=120) == 0
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("syncagent_cycles_total", (("status", finished["outcome"]),))] >= 1
    assert samples[("syncagent_last_success_timestamp_seconds", ())] > 0
