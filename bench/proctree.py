"""The memory of a process tree: an agent and the evaluation workers it forks.

A bench's figure for the agent must count its workers too: each is a process of its own
with its own RSS. RSS counts the pages a worker shares with the agent (forked, copy-on-write)
twice, so the summed RSS is an upper bound; PSS splits each shared page between its sharers
and is the fair total. Both are sampled, as /proc gives them (Linux only)."""

from __future__ import annotations

import threading
from pathlib import Path


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants, now."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:   # ended meanwhile
                continue
    return out


def _memory_kb(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, private) of one process in KB; zeros once it ended. Private: the pages no
    other process maps (for a forked worker: what it allocated, and each page it shares no
    longer because either process wrote to it since the fork)."""
    try:
        rss = next((int(line.split()[1]) for line in
                    Path(f"/proc/{pid}/status").read_text().splitlines()
                    if line.startswith("VmRSS:")), None)
        if rss is None:   # a zombie (ended, not yet reaped) has no memory lines left
            return 0, 0, 0
        rollup = {line.split(":")[0]: int(line.split()[1]) for line in
                  Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]}
        return rss, rollup["Pss"], rollup["Private_Clean"] + rollup["Private_Dirty"]
    except (OSError, KeyError, IndexError, ValueError):
        return 0, 0, 0


class TreeMemory:
    """The peak summed RSS and PSS of a process and its descendants, sampled on a thread;
    ``at_pss_peak``: at the PSS peak, the process's own PSS and its descendants' private
    memory (what each worker costs beyond the pages it still shares), in KB."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every = pid, every
        self.rss_kb = self.pss_kb = 0
        self.at_pss_peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_parts_mb(self) -> dict[str, float]:
        """At the PSS peak, in MB: the root's PSS, its descendants' private memory, and how
        many descendants there were."""
        peak = self.at_pss_peak
        return {"agent_pss": round(peak.get("root_pss", 0) / 1024, 1),
                "workers_private": round(peak.get("descendants_private", 0) / 1024, 1),
                "workers": peak.get("descendants", 0)}

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            sizes = [_memory_kb(pid) for pid in _tree(self.pid)]   # the root first
            self.rss_kb = max(self.rss_kb, sum(rss for rss, _, _ in sizes))
            pss = sum(pss for _, pss, _ in sizes)
            if pss > self.pss_kb and sizes:
                self.pss_kb = pss
                self.at_pss_peak = {"root_pss": sizes[0][1],
                                    "descendants_private": sum(p for _, _, p in sizes[1:]),
                                    "descendants": len(sizes) - 1}


def peak_rss_mb() -> float:
    """This process's own high-water RSS (VmHWM). Not getrusage: Linux carries ru_maxrss over
    from the parent through fork and exec, so a child of a large bench would report its."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0
