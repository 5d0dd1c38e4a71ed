"""bench/scale.py at a small size: it seeds, rescores every seeded person on each backend and
prints the JSON figures the issue's acceptance reads (the figures themselves are not judged
here: no timed tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.postgres import POSTGRES_URL, postgres_skip_reason

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scale import TARGET_RATE, cores_at_target  # noqa: E402

KEYS = {"backend", "persons", "seconds", "persons_per_s", "peak_rss_mb"}


def test_scale_bench_rescores_every_seeded_person_and_prints_its_figures() -> None:
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--persons", "2000"]
    backends = ["sqlite"]
    if postgres_skip_reason() is None:
        command += ["--postgres", POSTGRES_URL]
        backends.append("postgresql")
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    figures = json.loads(out.stdout)
    assert figures["persons"] == 2000
    assert [run["backend"] for run in figures["runs"]] == backends
    for run in figures["runs"]:
        assert set(run) >= KEYS, run
        assert run["persons"] == 2000, "every seeded person is evaluated"
        assert run["status"] == "ok" and run["planned"] > 0
        assert run["seeded_rows"]["persons"] == 2000
        assert run["peak_rss_mb"] > 0 and run["persons_per_s"] > 0
        assert 0 <= run["steal_percent"] <= 100
        assert run["cores"] >= 1
        # the run's own CPU a person, at the target rate (the server's too, on Postgres)
        agent_only = run["cpu_seconds"] / run["persons"] * TARGET_RATE
        assert run["cores_at_target"] >= round(agent_only, 2) > 0
    # the host's speed, beside the rates it explains (bench/host.py)
    assert set(figures["host"]) == {"before", "after"}
    assert all(probe["python_loop_ns"] > 0 for probe in figures["host"].values())
    for run in figures["runs"]:   # the local server's CPU: Postgres's only
        if run["backend"] == "postgresql":
            assert run["server_cpu_seconds"] > 0 and run["server_cpu_us_per_person"] > 0
            # the server's cores are in the figure, on top of the agent's
            agent_only = run["cpu_seconds"] / run["persons"] * TARGET_RATE
            assert run["cores_at_target"] > round(agent_only, 2)
        else:
            assert "server_cpu_seconds" not in run


def test_again_adds_a_second_rescore_of_every_person_with_the_same_figures() -> None:
    """``--again``: the run's own figures, then a second rescore's under ``again`` (SQLite
    only: the second pass is the same code on either backend)."""
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--persons", "300",
               "--again"]
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    (run,) = json.loads(out.stdout)["runs"]
    assert set(run) >= KEYS | {"again", "cpu_seconds", "workers_cpu_seconds"}, run
    again = run["again"]
    assert set(again) >= KEYS - {"backend", "peak_rss_mb"} | {"cpu_seconds", "planned"}
    assert run["persons"] == again["persons"] == 300
    assert again["status"] == "ok" and again["cpu_seconds"] >= 0


def test_cores_at_target_is_the_cpu_a_person_at_the_target_rate() -> None:
    # 8.3 CPU-s for 20,000 persons (a morning's SQLite run): 4.15 cores at 10,000/s
    assert cores_at_target(8.3, 20_000) == pytest.approx(8.3 / 20_000 * TARGET_RATE)
    # a local Postgres server's 200 us a person adds two cores at 10,000/s
    assert cores_at_target(8.3, 20_000, 200) == pytest.approx(
        (8.3 / 20_000 + 200e-6) * TARGET_RATE)


def test_cores_at_target_without_persons_or_server_figure() -> None:
    assert cores_at_target(1.0, 0) is None   # nothing evaluated: no figure, no division
    assert cores_at_target(1.0, 100, None) == cores_at_target(1.0, 100)   # remote server
