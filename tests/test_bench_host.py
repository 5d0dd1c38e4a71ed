"""bench/host.py: the host's figures the benches print beside their rates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import host  # noqa: E402

LOCAL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
# A parent that, told to, forks a child burning ~0.4 s of CPU, reaps it and says so; then
# waits for its stdin to close. As a Postgres server's connection processes, the child ends
# before it is measured: its time is only in the parent's reaped children.
SERVER = """
import os, sys, time
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    end = time.process_time() + 0.4
    while time.process_time() < end:
        pass
    os._exit(0)
os.waitpid(pid, 0)
print("reaped", flush=True)
sys.stdin.readline()
"""


def test_probe_times_both_workloads() -> None:
    figures = host.probe(repeats=1)
    assert set(figures) == {"python_loop_ns", "json_dumps_us"}
    assert all(value > 0 for value in figures.values())


def test_steal_is_the_stolen_share_of_every_tick_between_the_readings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    readings = iter([[100, 0, 50, 800, 0, 0, 0, 50], [150, 0, 60, 960, 0, 0, 0, 80]])
    monkeypatch.setattr(host, "_cpu_ticks", lambda: next(readings))
    # 250 ticks went by, 30 of them stolen
    assert host.Steal().percent() == 12.0


def test_steal_is_unknown_without_proc_stat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "_cpu_ticks", lambda: None)
    assert host.Steal().percent() is None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_server_cpu_counts_the_connection_processes_that_ended_meanwhile(
        tmp_path: Path) -> None:
    named = tmp_path / "fakeserver"   # the process's name (comm) is its executable's
    named.symlink_to(os.path.realpath(sys.executable))
    with subprocess.Popen([str(named), "-c", SERVER], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as server:
        assert server.stdin is not None and server.stdout is not None
        try:
            measured = host.ServerCpu(LOCAL, name="fakeserver")
            server.stdin.write("go\n")
            server.stdin.flush()
            assert server.stdout.readline().strip() == "reaped"
            spent = measured.seconds()
        finally:
            server.stdin.close()
    assert spent is not None and 0.3 <= spent < 2.0


def test_server_cpu_is_unknown_for_a_remote_server_or_none_running() -> None:
    assert host.ServerCpu("postgresql+psycopg://u@db.example.com/x").seconds() is None
    assert host.ServerCpu(LOCAL, name="no-such-server-here").seconds() is None
