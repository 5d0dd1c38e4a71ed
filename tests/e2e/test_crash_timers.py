"""Acceptance 3 of issue #14: SIGKILL between a timer's due time and its write, at ten random
points, still gives exactly one task per timer step.

The agent runs as a child process (`syncagent sync --once --sandbox URL`, which takes its time
from the sandbox's clock) over a few hundred leads. After an uninterrupted backfill has
started the timers, the test moves the sandbox clock forward in steps, each step past the
due time of pending timers, and SIGKILLs the child at a random moment of the cycle that fires
them, ten times. Once the agent has caught up, every fired timer step has exactly one task in
the org or the portal, no task exists without its fired step, and no due step is left behind.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from state.models import HandoffTask, SlaTimerRow
from state.store import StateStore
from syncagent.sandbox.server import RunningSandbox
from tests.e2e.loopworld import state_rows
from tests.e2e.test_crash import _cycle_started, _fresh_state, _run_of, _sync, _until_quiet
from tests.fixtures.sandbox import SandboxFactory

LEADS = 300
KILLS = 10
# Half a day a step: a cycle that fires its due steps before the kill lands (a fast cycle does)
# must leave later steps for the kills still to come; with 30-hour steps ten steps reached past
# every step of every timer (10.5 days at most), and a fast cycle could fire them all at once.
STEP = timedelta(hours=12)
ALL_DUE = timedelta(days=11)   # past the last step of any timer started before the kills


def test_sigkill_between_due_time_and_write_gives_one_task_per_timer_step(
    sandbox_factory: SandboxFactory, tmp_path: Path,
) -> None:
    sandbox = sandbox_factory(leads=LEADS, seed=11)
    state_url = _fresh_state(tmp_path, "timers.db")
    started = time.monotonic()
    _until_quiet(sandbox, state_url)
    backfill_s = time.monotonic() - started
    assert _pending(state_url), "the backfill should start SLA and qualify timers"

    kills = _kill_while_timers_are_due(sandbox, state_url, random.Random(20261201), backfill_s)
    assert kills == KILLS, "every kill must land inside a cycle that had due timers"
    sandbox.ctx.clock.advance(ALL_DUE.total_seconds())   # the remaining steps fire unkilled
    _until_quiet(sandbox, state_url)

    timers = state_rows(state_url, SlaTimerRow)
    now = sandbox.ctx.clock.now()
    late = [t.key for t in timers if t.status == "pending" and t.due_at <= now]
    assert late == [], f"{len(late)} due timer steps never fired, e.g. {late[:3]}"
    fired = {t.key: t for t in timers if t.status == "fired"}
    steps = Counter(t.kind for t in fired.values())
    assert steps["remind"] and steps["qualify"] and steps["qualify_late"], steps
    _assert_one_task_per_fired_step(sandbox, state_url, fired)


def _pending(state_url: str) -> list[SlaTimerRow]:
    return [t for t in state_rows(state_url, SlaTimerRow) if t.status == "pending"]


def _kill_while_timers_are_due(sandbox: RunningSandbox, state_url: str, rng: random.Random,
                               backfill_s: float) -> int:
    """Move the clock a step past pending due times, then SIGKILL the cycle that fires them at
    a random moment; a child that finishes first is not counted, and the window shrinks."""
    store, window, kills = StateStore(state_url), backfill_s / 2, 0
    for _ in range(KILLS * 4):
        if kills == KILLS:
            break
        _step_past_a_due_timer(sandbox, state_url)
        child = _sync(sandbox, state_url)
        if not _cycle_started(store, child):
            continue
        time.sleep(rng.uniform(0.0, 1.0) * window)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        if _run_of(store, child)["status"] == "running":
            kills += 1
        else:
            window = max(0.05, window / 2)
    return kills


def _step_past_a_due_timer(sandbox: RunningSandbox, state_url: str) -> None:
    """Advance the clock by STEP, and further if needed, so that some pending step is due."""
    clock = sandbox.ctx.clock
    target = clock.now() + STEP
    pending = [t.due_at for t in _pending(state_url)]
    assert pending, "a timer step should be pending before every kill"
    if min(pending) > target:
        target = min(pending) + timedelta(minutes=1)
    clock.advance((target - clock.now()).total_seconds())


def _assert_one_task_per_fired_step(sandbox: RunningSandbox, state_url: str,
                                    fired: dict[str, SlaTimerRow]) -> None:
    tasks = {t.key: t for t in state_rows(state_url, HandoffTask)}
    assert set(fired) <= set(tasks), "every fired step recorded its task"
    sf_keys, hs_bodies = _remote_tasks(sandbox)
    remote = Counter(sf_keys)
    for body in hs_bodies:
        remote.update(key for key in tasks if key in body)
    for key, timer in fired.items():
        expected = 1 if tasks[key].recipient else 0     # nobody to give it to: no task
        assert remote[key] == expected, (key, remote[key], timer.kind, tasks[key].detail)
    strays = [key for key in remote if key.startswith("sla:") and key not in fired]
    assert strays == [], f"tasks without a fired timer step: {strays[:3]}"
    _assert_no_step_fired_under_a_second_key(fired.values())


def _assert_no_step_fired_under_a_second_key(fired: Iterable[SlaTimerRow]) -> None:
    """A key is (person, step, start of the chain): a step fired again after a crash under a
    re-derived start would be a second key. Only a reassignment starts a new chain, and the
    qualify window opens once (nobody recycles a lead here)."""
    per_person: dict[int, Counter[str]] = defaultdict(Counter)
    chains: dict[int, set[datetime]] = defaultdict(set)
    for timer in fired:
        per_person[timer.person_id][timer.kind] += 1
        if timer.kind in ("remind", "escalate", "reassign"):
            chains[timer.person_id].add(timer.started_at)
    for person, kinds in per_person.items():
        restarts = kinds["reassign"]
        assert kinds["remind"] <= restarts + 1 and kinds["escalate"] <= restarts + 1, \
            (person, kinds)
        assert len(chains[person]) <= restarts + 1, (person, sorted(chains[person]))
        assert kinds["qualify"] <= 1 and kinds["qualify_late"] <= 1, (person, kinds)


def _remote_tasks(sandbox: RunningSandbox) -> tuple[list[str], list[str]]:
    """The idempotency keys of the org's Tasks and the bodies of the portal's tasks."""
    ctx = sandbox.ctx
    with ctx.lock:
        sf_keys = [str(r["Idempotency_Key__c"]) for r in ctx.sf.records("Task")
                   if r.get("Idempotency_Key__c") and not r.get("IsDeleted")]
        hs_bodies = [str(r.properties.get("hs_task_body") or "")
                     for r in _hubspot_tasks(ctx)]
    return sf_keys, hs_bodies


def _hubspot_tasks(ctx: Any) -> list[Any]:
    return [r for r in ctx.hs.store("tasks").records.values() if not r.archived]
