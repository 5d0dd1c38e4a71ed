"""Where a backfill's wall time goes (``python bench/e2e.py --timeline``).

Two records on one clock (``time.monotonic`` is system-wide on Linux, so the bench and its
child agent share it):

- every API call the sandbox answers, from the sandbox's own counting (bench process): per
  second of the backfill, Salesforce calls, HubSpot searches, other HubSpot calls and 429s;
- the agent's cycle phases (child process): pull, match, evaluate-and-plan, each push, the
  settle read-back, each with its wall and CPU seconds, its RSS and the high-water RSS so far
  at its end (``rss_mb``, ``hwm_mb``), and when each stream's pages were committed;
- the agent's RSS twice a second (``RssSampler``): per ten seconds, the highest sample
  (``rss_mb`` in ``per_10s``), so the time of the peak can be read beside the calls and phases;
- with ``SYNCAGENT_BENCH_TRACEMALLOC=N`` (measuring runs only: it slows the agent several
  times over), a tracemalloc snapshot at the end of each long phase, its largest allocation
  sites (N frames each) and the traced peak (``TraceLog``).

What it shows is where the HubSpot lane, which binds a backfill, is idle or under its limit.
"""

from __future__ import annotations

import functools
import gc
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

CallLog = list[tuple[float, str, bool, int]]   # (monotonic, system, search, status)


def record_sandbox_calls() -> CallLog:
    """Patch the sandbox's counting middleware (in this process) to log each call's time."""
    from syncagent.sandbox.hubspot.ratelimit import is_search
    from syncagent.sandbox.middleware import FaultAndStatsMiddleware

    calls: CallLog = []
    counted = FaultAndStatsMiddleware._count

    def count(self: Any, scope: Any, system: Any, status: int) -> None:
        calls.append((time.monotonic(), str(system), system == "hubspot" and is_search(scope),
                      status))
        counted(self, scope, system, status)

    FaultAndStatsMiddleware._count = count  # type: ignore[method-assign]
    return calls


def per_second(calls: CallLog, start: float, end: float) -> list[dict[str, int]]:
    """Calls per whole second of [start, end]: sf, hs_search, hs_other, r429."""
    seconds = max(1, int(end - start) + 1)
    rows = [{"t": t, "sf": 0, "hs_search": 0, "hs_other": 0, "r429": 0} for t in range(seconds)]
    for moment, system, search, status in calls:
        if not start <= moment <= end:
            continue
        row = rows[min(seconds - 1, int(moment - start))]
        key = "sf" if system == "salesforce" else ("hs_search" if search else "hs_other")
        row[key] += 1
        row["r429"] += status == 429
    return rows


def summarize(calls: CallLog, start: float, end: float, phases: list[dict[str, Any]],
              rss: list[tuple[float, float]] | None = None) -> dict[str, Any]:
    """Per-10-second call counts (the HubSpot window), the agent's highest RSS sample in each
    window (``rss`` as (monotonic, MB) pairs), and the phases, all from the start."""
    seconds = per_second(calls, start, end)
    highest: dict[int, float] = {}
    for moment, mb in rss or ():
        window = int(max(0.0, moment - start)) // 10 * 10
        highest[window] = max(highest.get(window, 0.0), mb)
    windows = []
    for first in range(0, len(seconds), 10):
        part = seconds[first:first + 10]
        windows.append({"t": first, **{k: sum(r[k] for r in part)
                                       for k in ("sf", "hs_search", "hs_other", "r429")},
                        "rss_mb": highest.get(first)})
    return {"per_10s": windows,
            "phases": [{**p, "start": round(p["start"] - start, 1),
                        "end": round(p["end"] - start, 1)} for p in phases]}


class PhaseLog:
    """The child's phases, recorded by wrapping the cycle's step functions."""

    def __init__(self, trace: TraceLog | None = None) -> None:
        self.phases: list[dict[str, Any]] = []
        self.pages: dict[str, list[float]] = defaultdict(list)
        self.cpu_s: dict[str, float] = {}
        self.trace = trace
        self._lock = threading.Lock()

    def wrap(self, module: Any, name: str, label: str | None = None) -> None:
        original: Callable[..., Any] = getattr(module, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began, cpu = time.monotonic(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                ended = time.monotonic()
                rss, hwm = rss_mb()
                with self._lock:
                    self.phases.append({
                        "phase": label or name, "thread": threading.current_thread().name,
                        "start": began, "end": ended,
                        "cpu_s": round(time.process_time() - cpu, 1),
                        "rss_mb": rss, "hwm_mb": hwm})
                if self.trace is not None and ended - began >= 1.0 and label != "push_round":
                    self.trace.snap(label or name)

        setattr(module, name, timed)

    def cpu(self, module: Any, name: str, label: str | None = None) -> None:
        """Sum the CPU seconds the calling thread spends in this function (thread time: a
        thread waiting for the GIL or the network costs nothing), per label; a nested call
        to a function wrapped under the same label is counted once."""
        original: Callable[..., Any] = getattr(module, name)
        key = label or name
        inside = threading.local()

        @functools.wraps(original)
        def counted(*args: Any, **kwargs: Any) -> Any:
            if getattr(inside, key, False):
                return original(*args, **kwargs)
            setattr(inside, key, True)
            began = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                setattr(inside, key, False)
                spent = time.thread_time() - began
                with self._lock:
                    self.cpu_s[key] = self.cpu_s.get(key, 0.0) + spent

        setattr(module, name, counted)

    def watch_pages(self, module: Any) -> None:
        """Note when each page of each stream is committed (pull.commit)."""
        original = module.commit

        def commit(page: Any, system: str, *args: Any, **kwargs: Any) -> Any:
            out = original(page, system, *args, **kwargs)
            with self._lock:
                self.pages[f"{system}.{page.stream}"].append(time.monotonic())
            return out

        module.commit = commit

    def as_json(self) -> dict[str, Any]:
        phases = sorted(self.phases, key=lambda p: p["start"])
        # pushes alongside evaluation are many short rounds: keep only the first and last
        streams = {name: {"pages": len(times), "first": min(times), "last": max(times)}
                   for name, times in self.pages.items()}
        return {"phases": [p for p in phases if p["end"] - p["start"] >= 0.5
                           or p["phase"] != "push_round"], "streams": streams,
                "cpu_by_step": {k: round(v, 2) for k, v in sorted(self.cpu_s.items())},
                "tracemalloc": self.trace.snaps if self.trace is not None else None}


def rss_mb() -> tuple[float | None, float | None]:
    """This process's RSS and high-water RSS now, in MB (None where /proc has no status)."""
    found: dict[str, float] = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    found[line[:5]] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return found.get("VmRSS"), found.get("VmHWM")


class RssSampler:
    """The process's RSS every ``interval`` seconds, as (monotonic, MB) pairs: when the peak
    happens, beside the phases and the calls."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join()
        return self.samples

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss, _hwm = rss_mb()
            if rss is not None:
                self.samples.append((time.monotonic(), rss))


class TraceLog:
    """tracemalloc snapshots at the end of long phases: traced now and at peak, and the
    largest allocation sites (``frames`` deep). For measuring runs only: tracing every
    allocation slows the agent several times over."""

    def __init__(self, frames: int, top: int = 15) -> None:
        import tracemalloc

        self.top = top
        self.snaps: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        tracemalloc.start(frames)

    def snap(self, label: str) -> None:
        import tracemalloc

        with self._lock:
            current, peak = tracemalloc.get_traced_memory()
            stats = tracemalloc.take_snapshot().statistics("traceback")[:self.top]
            self.snaps.append({
                "phase": label, "at": time.monotonic(), "traced_mb": round(current / 2**20, 1),
                "traced_peak_mb": round(peak / 2**20, 1), "rss_mb": rss_mb()[0],
                "top": [{"mb": round(s.size / 2**20, 2), "count": s.count,
                         "where": [f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}"
                                   for f in s.traceback]} for s in stats]})


def instrument_child() -> PhaseLog:
    """Wrap the cycle's steps in the agent (child) process."""
    from syncagent.pipeline import cycle, overlap, pull

    frames = int(os.environ.get("SYNCAGENT_BENCH_TRACEMALLOC") or 0)
    log = PhaseLog(TraceLog(frames) if frames > 0 else None)
    log.wrap(cycle, "pull")
    log.wrap(cycle, "match")
    log.wrap(cycle, "_evaluate_and_plan", "evaluate_and_plan")
    log.wrap(cycle, "_push", "push")
    log.wrap(cycle, "read_back")
    log.wrap(overlap, "push", "push_round")  # per system thread
    log.watch_pages(pull)
    _count_cpu(log)
    return log


def _count_cpu(log: PhaseLog) -> None:
    """The agent's CPU by step, whatever thread runs it (``cpu_by_step``). Only plain
    functions: a generator's body runs after the call returns, outside the count."""
    from connectors.hubspot import streams as hs_streams
    from connectors.hubspot import sweep
    from connectors.salesforce import reading as sf_reading
    from state.mirror import MirrorStore
    from state.outbox import OutboxStore
    from syncagent.pipeline import cycle, decide, overlap, pull, push, writer

    steps = ((pull, "commit", "pull.commit"), (sf_reading, "_convert", "pull.salesforce_convert"),
             (sweep, "_records", "pull.hubspot_convert"),
             (sweep, "_admitted", "pull.hubspot_convert"),
             (hs_streams, "event_activity", "pull.hubspot_convert"), (cycle, "match", "match"),
             (decide, "_evaluate_chunk", "evaluate"),
             (writer.ChunkWriter, "_run", "evaluate.commit_thread"),
             (push, "_record", "push.record"),
             (MirrorStore, "record_written", "push.record.mirror"),
             (OutboxStore, "complete", "push.record.outbox"),
             (OutboxStore, "claim", "push.claim"), (push, "_write", "push.write"),
             (cycle, "read_back", "settle"), (overlap, "read_back", "settle"),
             # whole steps, and the push rounds' own bookkeeping (each is O(outbox))
             (pull, "_pull_one", "pull.all"), (overlap, "push", "push.all"),
             (cycle, "_push", "push.all"), (OutboxStore, "due_counts", "push.due_counts"),
             (OutboxStore, "claim_holders", "push.claim_holders"),
             (OutboxStore, "release", "push.release"),
             (MirrorStore, "activities_for", "evaluate.activities"),
             (MirrorStore, "person_rows", "evaluate.person_rows"))
    for owner, name, label in steps:
        log.cpu(owner, name, label)


class StackSampler:
    """Samples every thread's stack (``sys._current_frames``) twenty times a second: which
    of the agent's functions the time goes to, per thread, waiting included (a thread
    blocked on a socket or a lock shows the Python frame that waits).

    The garbage collector is off while the frames are taken: CPython 3.11 holds its thread
    list lock in ``sys._current_frames``, and a collection that frees a ``threading.local``
    there takes that lock again and hangs the process (seen in a 100k backfill)."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.counts: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:60]
        return dict(top)

    def _run(self) -> None:
        import sys

        me = threading.get_ident()
        names = {}
        while not self._stop.wait(self.interval):
            for thread in threading.enumerate():
                names[thread.ident] = thread.name.split("_")[0].rstrip("0123456789-")
            collecting = gc.isenabled()
            gc.disable()
            try:
                frames = sys._current_frames()
            finally:
                if collecting:
                    gc.enable()
            for ident, frame in frames.items():
                if ident == me:
                    continue
                self.counts[f"{names.get(ident, '?')}: {_where(frame)}"] += 1


def _where(frame: Any) -> str:
    """The innermost frame, and the innermost frame of the project's own code above it."""
    leaf = f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"
    own = frame
    while own is not None and not any(part in own.f_code.co_filename
                                      for part in ("/syncagent/", "/connectors/", "/state/")):
        own = own.f_back
    if own is None or own is frame:
        return leaf
    return f"{own.f_code.co_filename.rsplit('/', 1)[-1]}:{own.f_code.co_name} > {leaf}"
