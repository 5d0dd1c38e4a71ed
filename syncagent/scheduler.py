"""The agent's run loop: one cycle per interval, run only by the holder of the "agent" lease.

`run_agent` is what `syncagent run` calls. Three threads take part:
- the calling (main) thread keeps the lease: the leader renews it every lease/3 s, between
  cycles too, so a standby never takes over from a live leader; a standby polls it every
  lease/4 s, so it takes over within lease + lease/4 s of a leader's death (kill -9 included);
- APScheduler's scheduler thread fires the cycle job (IntervalTrigger with jitter, coalesce,
  max_instances=1) while this process leads; a cycle that outlasts the interval is followed
  at once rather than at the tick after the one it made APScheduler skip;
- one worker thread runs the cycle itself.

A cycle learns that it must stop (SIGTERM/SIGINT, or the lease was lost) through the
`threading.Event` it is handed; it checks it between batches and returns at that safe point.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from state.store import StateStore
from syncagent.errors import AuthError, ConfigError, QuotaExhausted, SyncAgentError, needs_a_person

log = structlog.get_logger(__name__)

LEASE_NAME = "agent"
JOB_ID = "cycle"
# Errors after which another cycle can only fail the same way: stop and tell the operator.
# (`needs_a_person` also counts schema refusals: a field or scope the remote lacks.)
STOPPING_ERRORS: tuple[type[SyncAgentError], ...] = (AuthError, ConfigError, QuotaExhausted)

Cycle = Callable[[threading.Event], object]


@dataclass
class _CycleLoop:
    """The state one `run_agent` call shares between its threads (guarded by `lock`)."""

    cycle: Cycle
    store: StateStore
    holder: str
    interval_seconds: float
    jitter_seconds: float
    lease_seconds: float
    stop: threading.Event
    run_first_cycle_now: bool
    scheduler: BackgroundScheduler = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)
    leader: bool = False
    # The event handed to the cycle in flight (None between cycles).
    halt: threading.Event | None = None
    idle: threading.Event = field(default_factory=threading.Event)
    fatal: SyncAgentError | None = None
    overran: bool = False   # the last cycle outlasted the interval (see _after_cycle)

    def __post_init__(self) -> None:
        self.idle.set()
        self.scheduler = BackgroundScheduler(
            timezone=UTC,
            # One worker: two cycles of one agent must never run side by side.
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            # misfire_grace_time=None: a late cycle (host asleep, clock jump) still runs, since a
            # late sync beats a skipped one; coalesce folds every missed run into that one.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.scheduler.add_listener(self._after_cycle, EVENT_JOB_EXECUTED)

    def _after_cycle(self, event: JobExecutionEvent) -> None:
        """A cycle that outlasted the interval had its tick skipped (APScheduler drops a run
        while one is in flight, max_instances): the next cycle starts now instead of at the
        tick after, as coalescing intends, so a change waits at most an interval plus the
        cycle in flight, not two intervals (the form-fill latency, issue 18). Run as a
        listener: APScheduler counts the cycle as finished before it calls one."""
        with self.lock:
            overran, self.overran = self.overran, False
            if not overran or not self.leader or self.stop.is_set():
                return
        with suppress(JobLookupError):   # unscheduled meanwhile (standby, stop)
            self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))

    # ------------------------------------------------------------------ lease (main thread)
    def keep_lease(self) -> None:
        """Lead or stand by until `stop` is set."""
        first = True
        while not self.stop.is_set():
            held = self._try_lease()
            if held and not self.leader:
                # A takeover runs a cycle at once: the dead leader's schedule is unknown.
                self._become_leader(at_once=self.run_first_cycle_now or not first)
            elif not held and (self.leader or first):
                self._become_standby(lost=self.leader)
            first = False
            self.stop.wait(self.lease_seconds / (3 if self.leader else 4))

    def _try_lease(self) -> bool:
        try:
            return self.store.runs.acquire_lease(LEASE_NAME, self.holder, self.lease_seconds)
        except Exception as exc:  # DB unreachable: we cannot prove we lead, so we must not
            log.warning("lease check failed", holder=self.holder, error=_describe(exc))
            return False

    def _become_leader(self, *, at_once: bool) -> None:
        with self.lock:
            self.leader = True
        log.info("lease won", lease=LEASE_NAME, holder=self.holder,
                 lease_seconds=self.lease_seconds, first_cycle="now" if at_once else "interval")
        when: dict[str, Any] = {"next_run_time": datetime.now(UTC)} if at_once else {}
        trigger = IntervalTrigger(seconds=self.interval_seconds,
                                  jitter=self.jitter_seconds or None, timezone=UTC)
        self.scheduler.add_job(self._run_cycle, trigger, id=JOB_ID, name="sync cycle",
                               replace_existing=True, **when)

    def _become_standby(self, *, lost: bool) -> None:
        self._unschedule()
        with self.lock:
            self.leader = False
        self.halt_cycle()
        if lost:
            log.warning("lease lost", lease=LEASE_NAME, holder=self.holder)
        log.info("standing by", lease=LEASE_NAME, holder=self.holder,
                 poll_seconds=self.lease_seconds / 4)

    def _unschedule(self) -> None:
        if self.scheduler.get_job(JOB_ID) is not None:
            self.scheduler.remove_job(JOB_ID)

    def halt_cycle(self) -> None:
        """Ask the cycle in flight, if any, to return at its next safe point."""
        with self.lock:
            if self.halt is not None:
                self.halt.set()

    def drain(self) -> None:
        """After `stop`: no new cycles; keep the lease while the cycle in flight finishes."""
        self._unschedule()
        self.halt_cycle()
        while not self.idle.wait(self.lease_seconds / 3):
            # Renewing stops a standby from starting a cycle while ours is finishing its batch.
            if self.leader and not self._try_lease():
                log.warning("lease lost while the last cycle finishes", holder=self.holder)

    def release(self) -> None:
        try:
            self.store.runs.release_lease(LEASE_NAME, self.holder)
        except Exception as exc:  # it expires by itself; the operator only needs to know
            log.warning("lease not released", holder=self.holder, error=_describe(exc))
        else:
            if self.leader:
                log.info("lease released", lease=LEASE_NAME, holder=self.holder)

    # ------------------------------------------------------------------ cycle (worker thread)
    def _run_cycle(self) -> None:
        halt = self._begin_cycle()
        if halt is None:
            return
        started = time.monotonic()
        log.info("cycle started", holder=self.holder)
        outcome, figures = "failed", {}
        try:
            figures = _figures(self.cycle(halt))
            outcome = str(figures.pop("status", "ok"))
        except SyncAgentError as exc:
            if needs_a_person(exc):
                self._stop_for(exc)
            else:
                log.error("cycle failed", holder=self.holder, error=exc.as_dict())
        except Exception:
            outcome = "crashed"  # recorded `failed` in the runs table; "crashed" marks a bug
            log.exception("cycle crashed", holder=self.holder)
        finally:
            self._end_cycle()
            took = time.monotonic() - started
            with self.lock:
                self.overran = took >= self.interval_seconds
            # One line per cycle with the report's figures: what an operator greps for.
            log.info("cycle finished", holder=self.holder, outcome=outcome,
                     stopped_early=halt.is_set(), duration_s=round(took, 3), **figures)

    def _begin_cycle(self) -> threading.Event | None:
        """A fresh stop event for this cycle, or None when this process must not cycle now."""
        with self.lock:
            if not self.leader or self.stop.is_set() or not self.idle.is_set():
                return None
            self.halt = threading.Event()
            self.idle.clear()
            return self.halt

    def _end_cycle(self) -> None:
        with self.lock:
            self.halt = None
            self.idle.set()

    def _stop_for(self, exc: SyncAgentError) -> None:
        log.error("agent stopping: cycle hit an error no retry can fix", holder=self.holder,
                  error=exc.as_dict())
        with self.lock:
            self.fatal = exc
        self.stop.set()


def run_agent(*, cycle: Cycle, store: StateStore, holder: str, interval_seconds: float,
              jitter_seconds: float, lease_seconds: float, stop: threading.Event | None = None,
              install_signal_handlers: bool = True, run_first_cycle_now: bool = True) -> None:
    """Run `cycle` every `interval_seconds` (+ up to `jitter_seconds`) while this process holds
    the "agent" lease; stand by otherwise. Returns once `stop` is set (SIGTERM/SIGINT set it)
    and the cycle in flight has returned, with the lease released. Re-raises AuthError and
    ConfigError from a cycle after stopping, since no later cycle could succeed."""
    if interval_seconds <= 0 or lease_seconds <= 0 or jitter_seconds < 0:
        raise ConfigError("the scheduler needs interval > 0, lease > 0 and jitter >= 0",
                          interval_seconds=interval_seconds, lease_seconds=lease_seconds,
                          jitter_seconds=jitter_seconds)
    agent = _CycleLoop(cycle, store, holder, interval_seconds, jitter_seconds, lease_seconds,
                   stop or threading.Event(), run_first_cycle_now)
    log.info("agent starting", holder=holder, interval_s=interval_seconds,
             jitter_s=jitter_seconds, lease_s=lease_seconds)
    with _signals_set(agent.stop, install_signal_handlers):
        agent.scheduler.start()
        try:
            agent.keep_lease()
            agent.drain()
        finally:
            agent.stop.set()  # also on an unexpected error: no cycle may start after this
            agent.halt_cycle()
            agent.scheduler.shutdown(wait=True)
            agent.release()
    log.info("agent stopped", holder=holder)
    if agent.fatal is not None:
        raise agent.fatal


@contextmanager
def _signals_set(stop: threading.Event, install: bool) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` while the agent runs; the previous handlers come back after."""
    if not install or threading.current_thread() is not threading.main_thread():
        if install:  # Python allows signal handlers only in the main thread
            log.warning("signal handlers not installed: run_agent is not in the main thread")
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # Event.set() takes the Event's lock, which the interrupted main thread may be holding
        # inside Event.wait(); setting it from a helper thread cannot deadlock.
        threading.Thread(target=_request_stop, args=(stop, signum), daemon=True).start()

    wanted = (signal.SIGTERM, signal.SIGINT)
    previous = {signum: signal.signal(signum, on_signal) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _request_stop(stop: threading.Event, signum: int) -> None:
    if not stop.is_set():
        log.info("stop requested: finishing the batch in flight",
                 signal=signal.Signals(signum).name)
    stop.set()


def _figures(report: object) -> dict[str, Any]:
    """The cycle report's figures, when the cycle returned one (status included)."""
    figures = getattr(report, "figures", None)
    out = dict(figures()) if callable(figures) else {}
    out.pop("duration_s", None)  # the log line times the whole cycle itself
    return out


def _describe(exc: Exception) -> dict[str, Any]:
    # The store's own errors carry a safe message; others are named by type only, since
    # driver messages can include the DB URL.
    if isinstance(exc, SyncAgentError):
        return exc.as_dict()
    return {"error": type(exc).__name__}


__all__ = ["LEASE_NAME", "STOPPING_ERRORS", "run_agent"]
