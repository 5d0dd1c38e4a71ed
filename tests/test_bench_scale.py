"""bench/scale.py at a small size: it seeds, rescores every seeded person on each backend and
prints the JSON figures the issue's acceptance reads (the figures themselves are not judged
here: no timed tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.fixtures.postgres import POSTGRES_URL, postgres_skip_reason

ROOT = Path(__file__).resolve().parents[1]
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
    # the host's speed, beside the rates it explains (bench/host.py)
    assert set(figures["host"]) == {"before", "after"}
    assert all(probe["python_loop_ns"] > 0 for probe in figures["host"].values())
    for run in figures["runs"]:   # the local server's CPU: Postgres's only
        if run["backend"] == "postgresql":
            assert run["server_cpu_seconds"] > 0 and run["server_cpu_us_per_person"] > 0
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
