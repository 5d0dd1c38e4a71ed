"""The scheduler: cycles on an interval, never overlapping, only on the lease holder; clean
shutdown on SIGTERM; failover between two agents sharing one Postgres.

In-process tests run `run_agent` in a thread on SQLite and stop it through its `stop` event.
Signal and kill -9 tests run real agent processes (tests/scheduler_worker.py), which append
their cycle and step events to a JSON-lines file the test reads.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from state.store import StateStore
from syncagent.errors import AuthError, ServerError
from syncagent.scheduler import LEASE_NAME, run_agent

REPO = Path(__file__).resolve().parents[1]


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[StateStore]:
    st = StateStore(sqlite_url)
    st.upgrade()
    yield st
    st.dispose()


class Recorder:
    """A cycle that records its start/end and how many cycles ran at once."""

    def __init__(self, seconds: float, fail: list[BaseException] | None = None) -> None:
        self.seconds = seconds
        self.fail = list(fail or [])
        self.spans: list[tuple[datetime, datetime, bool]] = []  # start, end, halted early
        self.started: list[datetime] = []
        self.running = 0
        self.most_at_once = 0
        self.lock = threading.Lock()

    def __call__(self, stop: threading.Event) -> None:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        start = now()
        with self.lock:
            self.started.append(start)
        try:
            halted = stop.wait(self.seconds)  # a cycle whose batches check `stop`
            if self.fail:
                raise self.fail.pop(0)
        finally:
            with self.lock:
                self.running -= 1
                self.spans.append((start, now(), halted))

    def starts(self) -> list[datetime]:
        with self.lock:
            return sorted(span[0] for span in self.spans)


@contextmanager
def agent_thread(store: StateStore, cycle: Callable[[threading.Event], object],
                 **options: Any) -> Iterator[threading.Event]:
    """run_agent in a thread; leaving the block sets stop and waits for it to return."""
    stop = threading.Event()
    errors: list[BaseException] = []
    settings: dict[str, Any] = {"holder": "agent-1", "interval_seconds": 0.3,
                                "jitter_seconds": 0.0, "lease_seconds": 1.0, **options}

    def target() -> None:
        try:
            run_agent(cycle=cycle, store=store, stop=stop, install_signal_handlers=False,
                      **settings)
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive(), "run_agent did not return after stop"
    if errors:
        raise errors[0]


def test_one_cycle_per_interval_with_jitter_first_cycle_at_once(store: StateStore) -> None:
    """The first cycle starts at once; each next one an interval (plus at most the jitter)
    after the previous start; the lease is released on return."""
    cycle = Recorder(0.05)
    launched = now()
    with agent_thread(store, cycle, interval_seconds=0.3, jitter_seconds=0.1):
        time.sleep(1.6)
    starts = cycle.starts()
    assert (starts[0] - launched).total_seconds() < 0.3
    gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
    assert 4 <= len(gaps) <= 5, gaps
    # 0.25 s of slack for thread wake-ups on a busy shared machine
    assert all(0.3 - 0.02 <= gap <= 0.3 + 0.1 + 0.25 for gap in gaps), gaps
    assert store.runs.leases() == []


def test_first_cycle_waits_an_interval_when_asked(store: StateStore) -> None:
    """run_first_cycle_now=False: the first cycle comes one interval after start, not at once."""
    cycle = Recorder(0.0)
    launched = now()
    with agent_thread(store, cycle, interval_seconds=0.5, run_first_cycle_now=False):
        time.sleep(0.8)
    assert len(cycle.started) == 1
    assert 0.5 - 0.02 <= (cycle.started[0] - launched).total_seconds() <= 0.5 + 0.25


def test_cycles_never_overlap_when_a_cycle_outlasts_the_interval(store: StateStore) -> None:
    """max_instances=1: a 0.5 s cycle on a 0.2 s interval runs back to back, never twice at once."""
    cycle = Recorder(0.5)
    with agent_thread(store, cycle, interval_seconds=0.2):
        time.sleep(2.0)
    spans = sorted(cycle.spans)
    assert cycle.most_at_once == 1
    assert len(spans) >= 3
    assert all(nxt[0] >= prev[1] for prev, nxt in pairwise(spans))


def test_a_cycle_that_outlasts_the_interval_is_followed_at_once_not_at_the_next_tick(
        store: StateStore) -> None:
    """A 1.3 s cycle on a 1 s interval: its tick at 1 s is skipped while it runs; the next
    cycle starts as it ends (a late sync beats a skipped one), not at the 2 s tick, so a
    change never waits two intervals behind one long cycle (issue 18's form-fill latency)."""
    cycle = Recorder(1.3)
    with agent_thread(store, cycle, interval_seconds=1.0):
        time.sleep(2.8)
    spans = sorted(cycle.spans)
    assert cycle.most_at_once == 1 and len(spans) >= 2
    waits = [(nxt[0] - prev[1]).total_seconds() for prev, nxt in pairwise(spans)]
    # the old behaviour waited 0.7 s for the next tick; 0.35 s of slack for wake-ups
    assert all(wait < 0.35 for wait in waits), waits


def test_failing_cycles_are_logged_and_the_agent_keeps_going(store: StateStore) -> None:
    """A SyncAgentError is logged with its as_dict(), an unexpected one with a traceback;
    the next cycle still runs."""
    cycle = Recorder(0.0, fail=[ServerError("HubSpot answered 503", status=503),
                                RuntimeError("bug")])
    with capture_logs() as logs, agent_thread(store, cycle, interval_seconds=0.2):
        deadline = time.monotonic() + 5
        while len(cycle.spans) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(cycle.spans) >= 3
    failed = [e for e in logs if e["event"] == "cycle failed"]
    assert failed and failed[0]["error"]["error"] == "ServerError"
    assert failed[0]["error"]["status"] == 503
    crashed = [e for e in logs if e["event"] == "cycle crashed"]
    assert crashed and crashed[0]["exc_info"] is True
    outcomes = [e["outcome"] for e in logs if e["event"] == "cycle finished"]
    assert outcomes[:3] == ["failed", "crashed", "ok"]


def test_auth_error_stops_the_agent_and_is_reraised(store: StateStore) -> None:
    """Bad credentials fail every cycle alike: the agent stops, releases the lease, re-raises."""
    cycle = Recorder(0.0, fail=[AuthError("Salesforce refused the credentials")])
    with capture_logs() as logs, pytest.raises(AuthError):
        run_agent(cycle=cycle, store=store, holder="agent-1", interval_seconds=0.2,
                  jitter_seconds=0.0, lease_seconds=1.0, install_signal_handlers=False)
    assert len(cycle.spans) == 1
    assert store.runs.leases() == []
    assert any(e["event"].startswith("agent stopping") for e in logs)


def test_lost_lease_halts_the_cycle_and_the_agent_retakes_it_when_free(
        store: StateStore) -> None:
    """When another holder takes the lease (ours looked expired to it: a stalled leader), the
    next renewal fails, the running cycle is told to stop, no cycle runs while the other holds
    it, and once it lapses the agent takes it back and cycles at once."""
    lease = 0.6
    cycle = Recorder(3.0)
    with capture_logs() as logs, agent_thread(store, cycle, interval_seconds=30.0,
                                              lease_seconds=lease):
        time.sleep(0.3)
        stolen_at = now()
        # From the thief's clock our lease has expired; its own lasts until `thief_until`.
        assert store.runs.acquire_lease(LEASE_NAME, "thief", 1.0, now=stolen_at + timedelta(
            seconds=lease))
        thief_until = stolen_at + timedelta(seconds=lease + 1.0)
        deadline = time.monotonic() + 5
        while len(cycle.started) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    first = sorted(cycle.spans)[0]
    second_start = sorted(cycle.started)[1]
    assert first[2], "the first cycle was not told to stop"
    # renewals come every lease/3 s; 0.25 s of slack for thread wake-ups
    assert (first[1] - stolen_at).total_seconds() <= lease / 3 + 0.25
    assert second_start > thief_until  # nothing ran while the thief held the lease
    # standby polls every lease/4 s, and a takeover cycles at once (interval is 30 s here)
    assert (second_start - thief_until).total_seconds() <= lease / 4 + 0.25
    events = [e["event"] for e in logs]
    assert "lease lost" in events and events.count("lease won") == 2


def test_stopped_agent_keeps_its_lease_until_the_last_batch_is_done(store: StateStore) -> None:
    """After stop, a batch in flight that outlasts the lease keeps the lease renewed, so no
    standby can start a cycle beside it; the lease is released once the cycle returns."""
    lease = 0.6
    finished = threading.Event()

    def cycle(stop: threading.Event) -> None:
        stop.wait()
        time.sleep(1.5)  # the batch in flight when stop came
        finished.set()

    grabs: list[tuple[bool, bool]] = []  # (standby won, cycle had finished by then)
    with agent_thread(store, cycle, lease_seconds=lease, interval_seconds=30.0) as stop:
        time.sleep(0.2)
        stop.set()
        while not finished.is_set():
            won = store.runs.acquire_lease(LEASE_NAME, "standby", lease)
            grabs.append((won, finished.is_set()))
            time.sleep(lease / 4)
    during = [won for won, done in grabs if not done]
    assert len(during) >= 4 and not any(during)
    assert "agent-1" not in [x["holder"] for x in store.runs.leases()]


# ---------------------------------------------------------------------------- processes
def start_worker(state_url: str, holder: str, out: Path, *args: str) -> subprocess.Popen[bytes]:
    with (out.parent / f"{holder}.log").open("wb") as log_file:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "tests.scheduler_worker", state_url, holder, str(out), *args],
            cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT)


def read_events(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    for event in events:
        event["at"] = datetime.fromisoformat(event["at"])
    return events


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def stop_worker(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_sigterm_finishes_the_step_in_flight_and_exits_cleanly(
        sqlite_url: str, tmp_path: Path) -> None:
    """SIGTERM mid-cycle: the step in flight completes, no further step or cycle starts, the
    process exits 0, and the lease is released."""
    StateStore(sqlite_url).upgrade()
    out = tmp_path / "events.jsonl"
    proc = start_worker(sqlite_url, "worker", out, "--interval", "0.5", "--steps", "10",
                        "--step-seconds", "0.2")
    try:
        wait_for(lambda: any(e["event"] == "step_start" and e["step"] == 2
                             for e in read_events(out)), 15, "step 2 to start")
        time.sleep(0.05)  # well inside the 0.2 s step
        sent = now()
        code = stop_worker(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    events = read_events(out)
    in_flight = [e for e in events if e["event"] == "step_start" and e["at"] < sent][-1]
    ended = [e for e in events if e["event"] == "step_end" and e["step"] == in_flight["step"]]
    assert code == 0
    assert ended and ended[0]["at"] > sent
    assert not [e for e in events if e["event"] in ("step_start", "cycle_start")
                and e["at"] > sent]
    assert [e["event"] for e in events][-2:] == ["cycle_stopped", "exit"]
    assert StateStore(sqlite_url).runs.leases() == []


def cycle_spans(events: list[dict[str, Any]], killed: datetime | None) -> list[tuple[Any, ...]]:
    """(start, end, holder) of each cycle; a cycle cut by kill -9 ends at the kill."""
    spans, start = [], None
    for event in events:
        if event["event"] == "cycle_start":
            start = event["at"]
        elif event["event"] in ("cycle_end", "cycle_stopped") and start is not None:
            spans.append((start, event["at"], event["holder"]))
            start = None
    if start is not None:
        assert killed is not None, "a cycle never ended"
        spans.append((start, killed, events[0]["holder"]))
    return spans


def test_two_agents_one_cycles_the_other_takes_over_after_kill_9(
        postgres_url: str, tmp_path: Path) -> None:
    """Two agents on one Postgres: only the lease holder cycles, the other stands by; after
    kill -9 of the leader the standby starts cycling once the dead leader's lease lapses,
    within one lease period of the kill plus its lease/4 poll and 0.5 s of process slack."""
    lease = 2.0
    StateStore(postgres_url).upgrade()
    outs = {name: tmp_path / f"{name}.jsonl" for name in ("a", "b")}
    args = ("--interval", "0.5", "--lease", str(lease), "--steps", "3", "--step-seconds", "0.1")
    procs = {name: start_worker(postgres_url, name, out, *args) for name, out in outs.items()}
    try:
        wait_for(lambda: any(read_events(o) for o in outs.values()), 20, "a first cycle")
        leader = next(name for name, out in outs.items() if read_events(out))
        standby = "b" if leader == "a" else "a"
        time.sleep(lease + 0.5)  # more than a lease period in which the standby must not cycle
        assert not read_events(outs[standby])
        assert [x["holder"] for x in StateStore(postgres_url).runs.leases()] == [leader]
        assert "standing by" in (tmp_path / f"{standby}.log").read_text()

        killed = now()
        procs[leader].kill()
        procs[leader].wait(10)
        [dead_lease] = StateStore(postgres_url).runs.leases()
        assert dead_lease["holder"] == leader
        lease_end = dead_lease["expires_at"]
        wait_for(lambda: bool(read_events(outs[standby])), lease + 5, "the standby's first cycle")
        took_over = read_events(outs[standby])[0]["at"]
        wait_for(lambda: len(read_events(outs[standby])) > 10, 5, "the new leader to cycle on")
        assert stop_worker(procs[standby]) == 0
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert took_over > lease_end  # never while the leader's lease was alive
    # the standby polls every lease/4 s; 0.4 s more for process wake-up and the DB round trip
    assert (took_over - lease_end).total_seconds() <= lease / 4 + 0.4
    assert (took_over - killed).total_seconds() <= lease + lease / 4 + 0.4
    spans = sorted(cycle_spans(read_events(outs[leader]), killed)
                   + cycle_spans(read_events(outs[standby]), None))
    assert len(spans) >= 5
    assert all(nxt[0] >= prev[1] for prev, nxt in pairwise(spans)), spans
    assert StateStore(postgres_url).runs.leases() == []
