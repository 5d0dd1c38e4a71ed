"""What the host was doing while a bench ran: how fast it ran Python, how much CPU its
hypervisor took back, and how much CPU a database server on it spent (Linux only).

A rate measured on a shared machine says as much about the machine as about the agent: this
project's scale bench ran the same commit at 6,368 persons/s one day and at 2,171 the next
(20,000 persons on SQLite: 320 and 815 µs of CPU a person). So the benches print, beside
their rates, the time of a fixed workload (`probe`), the share of CPU time stolen meanwhile
(`Steal`) and, for a server on this host, its CPU (`ServerCpu`): a Postgres rescore's rate
is set as much by the server's CPU, which the client's figures do not count, as by the
agent's own.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url

LOCAL_HOSTS = {None, "", "localhost", "127.0.0.1", "::1"}
#: A decision's stored reasons, in shape (nested dicts, short texts, a float): what a rescore
#: encodes most of.
_SAMPLE = {"grade": {"grade": "B+", "profile": "enterprise",
                     "reasons": [f"criterion {n} matches (+1 letter)" for n in range(6)]},
           "score": {"score": 42, "by_category": {"sales": 0.86, "web": 12.5},
                     "contributors": [{"rule": "pricing-view", "count": 2, "points": 10.0}]},
           "stage": {"stage": "MQL", "changed": True, "mql_date": None, "recycled": False},
           "owner": {"owner_id": "0058c0000000018AAA", "kind": "user", "why": "x" * 80}}


def probe(repeats: int = 3) -> dict[str, float]:
    """This process's CPU time for two fixed workloads, the best of ``repeats`` (the least
    disturbed): ``python_loop_ns``, a loop of dict look-ups, calls and text, per iteration;
    ``json_dumps_us``, one encoding of a decision-shaped dict. Compare them between runs
    before comparing their rates."""
    return {"python_loop_ns": round(_best(_loop, repeats) / 100_000 * 1e9, 1),
            "json_dumps_us": round(_best(_dumps, repeats) / 10_000 * 1e6, 2)}


def _best(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return min(times)


def _loop() -> int:
    table = {f"key{n}": n for n in range(64)}
    total = 0
    for n in range(100_000):
        total += table.get(f"key{n & 63}", 0) + len(str(n).strip())
    return total


def _dumps() -> None:
    for _ in range(10_000):
        json.dumps(_SAMPLE, sort_keys=True)


class Steal:
    """The share of the host's CPU time its hypervisor gave to others (``steal`` in
    /proc/stat) between `start` and `percent`; None where /proc/stat is not there."""

    def __init__(self) -> None:
        self._start = _cpu_ticks()

    def percent(self) -> float | None:
        end = _cpu_ticks()
        if self._start is None or end is None:
            return None
        total = sum(end) - sum(self._start)
        stolen = end[7] - self._start[7]   # user nice system idle iowait irq softirq steal
        return round(100 * stolen / total, 1) if total > 0 else 0.0


def _cpu_ticks() -> list[int] | None:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
        return [int(value) for value in first[1:9]]
    except (OSError, IndexError, ValueError):
        return None


class ServerCpu:
    """The CPU seconds that the processes named ``name`` on this host spent between
    `start` and `seconds` (theirs, and their reaped children's: a server's connection
    processes end with their connections), when ``url`` names a server on this host;
    None otherwise (a remote server's CPU is not ours to read). Whatever else the server did
    meanwhile counts too: another client's queries, an autovacuum after a bench's seeding."""

    def __init__(self, url: str, name: str = "postgres") -> None:
        self._name = name
        self._local = make_url(url).host in LOCAL_HOSTS
        self._start = self._ticks() if self._local else None

    def seconds(self) -> float | None:
        if self._start is None:
            return None
        end = self._ticks()
        return None if end is None else round((end - self._start) / os.sysconf("SC_CLK_TCK"), 1)

    def _ticks(self) -> int | None:
        total, seen = 0, False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:   # ended meanwhile: its time is in its parent's reaped children
                continue
            comm, fields = text[text.index("(") + 1:text.rindex(")")], text.rsplit(")", 1)[1]
            if comm == self._name:
                seen = True
                # after the name: state ppid ... utime(12) stime(13) cutime(14) cstime(15)
                total += sum(int(value) for value in fields.split()[11:15])
        return total if seen else None
