"""cProfile of every thread of the bench's child agent (``SYNCAGENT_BENCH_PROFILE=DIR``).

cProfile sees only the thread that enables it, and the agent's CPU is spread over the main
thread, the pull and HubSpot-read pools, the push threads and the chunk writer. So each
thread gets a profiler of its own (``threading.Thread.run`` is wrapped) and, when the cycle
ends, the stats are written per thread name (``DIR/<name>.prof``) and merged
(``DIR/all.prof``). Each profiler counts its thread's CPU time (``time.thread_time``), not
wall time, so a thread waiting for the GIL or a socket costs nothing. Read them with
``python -m pstats``. Opt-in, for measuring only: the profiler roughly doubles the agent's CPU.
"""

from __future__ import annotations

import cProfile
import pstats
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

PROFILE_ENV = "SYNCAGENT_BENCH_PROFILE"


class ThreadProfiles:
    """One cProfile per thread; merged by thread name when dumped."""

    def __init__(self) -> None:
        self._done: list[tuple[str, cProfile.Profile]] = []
        self._lock = threading.Lock()
        self._main = cProfile.Profile(time.thread_time)

    def start(self) -> None:
        original = threading.Thread.run
        profiles = self

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile(time.thread_time)
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()
                with profiles._lock:
                    profiles._done.append((_name(thread.name), profile))

        threading.Thread.run = run  # type: ignore[method-assign,assignment]
        self._main.enable()

    def dump(self, folder: str) -> None:
        self._main.disable()
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        by_name: dict[str, list[Any]] = defaultdict(list)
        with self._lock:
            for name, profile in [("MainThread", self._main), *self._done]:
                by_name[name].append(profile)
        merged: pstats.Stats | None = None
        for name, profiles in by_name.items():
            stats = pstats.Stats(profiles[0])
            for more in profiles[1:]:
                stats.add(more)
            stats.dump_stats(out / f"{name}.prof")
            merged = stats if merged is None else merged.add(stats)
        if merged is not None:
            merged.dump_stats(out / "all.prof")


def _name(thread_name: str) -> str:
    """Pool threads are named prefix_N: one file per prefix."""
    return thread_name.split("_")[0].rstrip("0123456789-") or "thread"
