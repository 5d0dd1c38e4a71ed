"""Evaluation in worker processes (pipeline/workers.py) stores exactly what the in-process
path stores, and a worker that dies or raises fails the cycle without losing or half-storing
a chunk: the next cycle evaluates the rest, and the tables end as a clean run leaves them.

One seeded org (bench/scale_seed.py, with messy records and leads owned by a queue, so
routing rotates pools all through the rescore) is copied and rescored twice, three days
apart, once in process and once with two workers, chunks of 40 persons: every table is
compared, ordered."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bench.scale import OfflineConnector
from bench.scale_seed import seed
from connectors.registry import registered
from state.store import MirrorRow, StateStore
from syncagent.engine import countries, load_rules
from syncagent.errors import ConfigError
from syncagent.pipeline import cycle, decide
from syncagent.pipeline import workers as pool_module
from syncagent.pipeline.cycle import Agent, CycleOptions, run_cycle
from syncagent.pipeline.workers import WorkerFailed, worker_count
from syncagent.settings import load_settings
from tests.pipeline.test_rescore_equivalence import NOW, TABLES, _messy
from tests.pipeline.test_rescore_equivalence import two_urls as two_urls  # the fixture

ROOT = Path(__file__).resolve().parents[2]
PERSONS = 400
CHUNK = 40
QUEUE = "00G8c0000000001AAA"
EVERY_TABLE = {**TABLES,
               "outbox_order": "SELECT idempotency_key FROM outbox ORDER BY id",
               "flags_order": "SELECT key FROM data_quality ORDER BY id",
               "feedback": "SELECT * FROM feedback ORDER BY key",
               "persons_evaluated": "SELECT id, due_at FROM persons ORDER BY id"}


@pytest.fixture
def urls(two_urls: tuple[str, str]) -> tuple[str, str]:
    """Two copies of one seeded org, on one backend."""
    for url in two_urls:
        _seeded(url).dispose()
    return two_urls


def _seeded(url: str) -> StateStore:
    store = StateStore(url)
    store.upgrade()
    seed(store, PERSONS, NOW - timedelta(hours=1))
    _messy(store)
    _queued(store)
    return store


def _queued(store: StateStore) -> None:
    """Every third lead owned by a queue: nobody chose its owner, so routing assigns it
    from a pool or a territory, and the rotation changes all through the rescore."""
    later = NOW - timedelta(minutes=20)
    leads = sorted(store.mirror.records("salesforce", "Lead"), key=lambda r: r.remote_id)
    store.mirror.upsert([MirrorRow("salesforce", "Lead", r.remote_id,
                                   {**r.fields, "OwnerId": QUEUE}, later,
                                   email_key=r.email_key) for r in leads[::3]], later)


def _agent(store: StateStore, workers: int | None) -> Agent:
    connectors: dict[str, Any] = {system: OfflineConnector(profile)
                                  for system, profile in registered().items()
                                  if profile.connect is not None}
    return Agent(store, connectors, load_rules(ROOT / "mappings"), holder="wk",
                 clock=lambda: NOW, workers=workers)


def _rescore(agent: Agent, days: int) -> cycle.CycleReport:
    agent.clock = lambda: NOW + timedelta(days=days)
    return run_cycle(agent, options=CycleOptions(rescore=True, pull=False, push=False))


def _tables(store: StateStore) -> dict[str, list[tuple[Any, ...]]]:
    with store.engine.connect() as connection:
        return {name: [tuple(row) for row in connection.execute(text(query))]
                for name, query in EVERY_TABLE.items()}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cycle, "all_persons", partial(decide.all_persons, size=CHUNK))
    monkeypatch.setattr(cycle, "due_persons", partial(decide.due_persons, size=CHUNK))


def _main_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[Sequence[int]]:
    """The chunks this process evaluates (a worker's calls are in the worker's memory)."""
    calls: list[Sequence[int]] = []
    real = decide._evaluate_chunk
    parent = os.getpid()

    def spy(store: StateStore, rules: Any, ids: Sequence[int], *rest: Any) -> Any:
        if os.getpid() == parent:
            calls.append(list(ids))
        return real(store, rules, ids, *rest)

    monkeypatch.setattr(decide, "_evaluate_chunk", spy)
    return calls


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_store_what_the_in_process_path_stores(urls: tuple[str, str], workers: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker reads the rotation the chunk before left off the board: nobody is
    evaluated again here, with one worker or two."""
    again = _compare_with_in_process(urls, workers, monkeypatch)
    assert not again, "the workers passed the rotation on: nobody was evaluated again"


def test_a_chunk_evaluated_on_a_stale_rotation_is_settled_here(
        urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing on the board (as when the chunk before failed, or the wait timed out),
    a worker evaluates on the rotation handed out with its chunk, which the chunks still
    out may change: its readers of the rotation are evaluated again here, from the first
    who read a stale one, and what is stored is the same."""
    monkeypatch.setattr(pool_module.RotationBoard, "wait", lambda *_args, **_kw: None)
    again = _compare_with_in_process(urls, 2, monkeypatch)
    assert again, "the rotation changed under the workers: some were evaluated again"
    assert sum(map(len, again)) < PERSONS


def _compare_with_in_process(urls: tuple[str, str], workers: int,
                             monkeypatch: pytest.MonkeyPatch) -> list[Sequence[int]]:
    """Two rescores, three days apart, in process and in ``workers``: every table is the
    same. Returns the chunks this process evaluated again."""
    in_process, pooled = StateStore(urls[0]), StateStore(urls[1])
    try:
        expected = []
        for days in (0, 3):
            assert _rescore(_agent(in_process, 0), days).persons_evaluated > 0
            expected.append(_tables(in_process))
        again = _main_evaluations(monkeypatch)
        got = []
        collector = gc.get_threshold()
        for days in (0, 3):
            report = _rescore(_agent(pooled, workers), days)
            assert report.status == "ok" and report.persons_evaluated > 0
            got.append(_tables(pooled))
            assert gc.get_threshold() == collector, "the pass's collector setting is undone"
    finally:
        in_process.dispose()
        pooled.dispose()
    for want, have in zip(expected, got, strict=True):
        assert want["decisions"] and want["outbox"]
        for name in EVERY_TABLE:
            assert have[name] == want[name], name
    return again


DOOMED = 5 * CHUNK + 1   # a person of the sixth chunk


def _doomed_chunk(monkeypatch: pytest.MonkeyPatch, fail: Callable[[], None]) -> None:
    """The worker evaluating DOOMED's chunk fails (in a worker only: this process's own
    evaluations, if any, go through)."""
    real = decide._evaluate_chunk
    parent = os.getpid()

    def failing(store: StateStore, rules: Any, ids: Sequence[int], *rest: Any) -> Any:
        if os.getpid() != parent and DOOMED in ids:
            fail()
        return real(store, rules, ids, *rest)

    monkeypatch.setattr(decide, "_evaluate_chunk", failing)


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _raising() -> None:
    raise ValueError("the text of this error quotes a record: jane@example.com")


def _all_dirty(store: StateStore) -> None:
    """As a backfill leaves them: every person changed, due in the next cycle."""
    with store.engine.begin() as connection:
        connection.execute(text("UPDATE persons SET dirty = true"))


def _cycle(agent: Agent) -> cycle.CycleReport:
    return run_cycle(agent, options=CycleOptions(pull=False, push=False))


@pytest.mark.parametrize("fail", [_killed, _raising], ids=["killed", "raises"])
def test_a_failed_worker_fails_the_cycle_and_the_next_cycle_redoes_its_work(
        urls: tuple[str, str], fail: Callable[[], None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    clean, broken = StateStore(urls[0]), StateStore(urls[1])
    try:
        _all_dirty(clean)
        _all_dirty(broken)
        _cycle(_agent(clean, 0))
        with monkeypatch.context() as patched:
            _doomed_chunk(patched, fail)
            with pytest.raises(WorkerFailed) as failed:
                _cycle(_agent(broken, 2))
        stored = _tables(broken)
        last = broken.runs.recent(1)[0]
        _cycle(_agent(broken, 2))
        assert _tables(broken) == _tables(clean), "the next cycle finished the work"
    finally:
        clean.dispose()
        broken.dispose()
    message = str(failed.value)
    assert last["status"] == "failed" and "jane@" not in message
    # what was stored is whole chunks before the failed one, nothing after it, and the
    # error says from where on nothing was
    done = {row[0] for row in stored["decisions"]}
    assert done == set(range(1, len(done) + 1)) and len(done) % CHUNK == 0
    assert len(done) < DOOMED
    assert f"persons from {len(done) + 1} on were not stored" in message
    if fail is _killed:
        assert "worker process died" in message
    else:
        assert f"failed (ValueError) on persons {DOOMED}-{DOOMED + CHUNK - 1}" in message
    assert all(row[4] is None or row[4] <= len(done) for row in stored["outbox"])
    evaluated = {pid for pid, due in stored["persons_evaluated"] if due is not None}
    assert evaluated <= done


def test_workers_that_cannot_start_leave_the_evaluation_to_this_process(
        urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """No fork (a sandboxed host, no memory): the cycle evaluates in process, as before."""
    def no_fork(*_args: Any, **_kwargs: Any) -> Any:
        raise OSError("fork refused")

    expected, got = StateStore(urls[0]), StateStore(urls[1])
    try:
        _rescore(_agent(expected, 0), 0)
        monkeypatch.setattr(pool_module, "ProcessPoolExecutor", no_fork)
        report = _rescore(_agent(got, 2), 0)
        assert report.status == "ok" and report.persons_evaluated > 0
        assert _tables(got) == _tables(expected)
    finally:
        expected.dispose()
        got.dispose()


def test_worker_count_defaults_to_the_cores_but_one(monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_count(0) == 0 and worker_count(3) == 3
    assert worker_count(0, rescore=True) == 0 and worker_count(3, rescore=True) == 3
    for cores, workers, rescoring in ((1, 0, 0), (2, 1, 2), (3, 2, 3), (4, 3, 4), (16, 4, 4)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert worker_count(None) == workers
        assert worker_count(None, rescore=True) == rescoring, "a rescore's process only commits"


def test_a_rescore_evaluates_in_a_worker_per_core(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Left to the default, a rescore on two cores starts two workers, a sync cycle one."""
    started: list[int] = []
    real = pool_module.EvaluationPool.__init__

    def counting(self: pool_module.EvaluationPool, store: StateStore, job: Any,
                 workers: int) -> None:
        started.append(workers)
        real(self, store, job, workers)

    monkeypatch.setattr(pool_module.EvaluationPool, "__init__", counting)
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0, 1})
    store = _seeded(f"sqlite:///{tmp_path / 'count.db'}")
    try:
        agent = _agent(store, None)
        _rescore(agent, 1)
        _all_dirty(store)
        _cycle(agent)
    finally:
        store.dispose()
    assert started == [2, 1], "a rescore's process only commits; a sync's pulls and pushes"


def test_eval_workers_is_a_setting(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)   # no syncagent.yaml of the checkout's
    assert load_settings().eval_workers is None, "not set: the agent's default"
    monkeypatch.setenv("SYNCAGENT_EVAL_WORKERS", "0")
    assert load_settings().eval_workers == 0
    monkeypatch.setenv("SYNCAGENT_EVAL_WORKERS", "-1")
    with pytest.raises(ConfigError, match="eval_workers"):
        load_settings()


ORPHANS = """
import os, signal, sys
from pathlib import Path
from state.store import StateStore
from syncagent.pipeline.workers import EvaluationPool, Job

job = Job(sys.argv[1], None, None, None, None, None)  # the workers only open the store
pool = EvaluationPool(StateStore(sys.argv[1]), job, 2)
assert pool.start()
with pool:
    pids = [p for task in Path("/proc/self/task").glob("*/children")
            for p in task.read_text().split()]
    print(" ".join(pids), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\\nState:\\tZ" not in status   # a zombie has ended


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="Linux only")
def test_the_workers_end_when_the_agent_is_killed(tmp_path: Path) -> None:
    """A SIGKILL of the agent leaves no worker behind, waiting for chunks forever."""
    with subprocess.Popen([sys.executable, "-c", ORPHANS, f"sqlite:///{tmp_path / 's.db'}"],
                          stdout=subprocess.PIPE, text=True, cwd=ROOT) as agent:
        assert agent.stdout is not None
        workers = [int(pid) for pid in agent.stdout.readline().split()]
        assert agent.wait(timeout=60) == -signal.SIGKILL
    assert len(workers) == 2
    deadline = time.monotonic() + 10
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:   # this test's own processes: never left running
        os.kill(pid, signal.SIGKILL)
    assert not left, "the workers outlived the agent"


def test_garbage_is_collected_before_the_workers_fork(tmp_path: Path) -> None:
    """Frozen before the fork, a cycle of garbage would live on in this process and in every
    worker for the whole pass (the collector never looks at frozen objects)."""
    class Cyclic:
        me: Any = None

    store = StateStore(f"sqlite:///{tmp_path}/state.db")
    store.upgrade()
    job = pool_module.Job(store.url, None, None, None, None, NOW)  # type: ignore[arg-type]
    collecting = gc.isenabled()
    gc.disable()   # no automatic collection may free it first
    try:
        junk = Cyclic()
        junk.me = junk
        watched = weakref.ref(junk)
        del junk
        assert watched() is not None   # only a collection frees a cycle
        countries._tables.cache_clear()
        with pool_module.EvaluationPool(store, job, 1) as pool:
            assert pool.start()
            assert gc.get_freeze_count() > 0
            assert watched() is None
            # the country tables were built before the fork: the worker shares them
            assert countries._tables.cache_info().currsize == 1
        assert gc.get_freeze_count() == 0   # unfrozen when the pass ends
    finally:
        if collecting:
            gc.enable()
        store.dispose()



def _chunks_noted(events: Path, monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> None:
    """Each chunk a worker evaluates notes its start (and whether the collector is on) and
    leaves a cycle of garbage, which notes when it is freed; with ``fail``, DOOMED's chunk
    raises then."""
    real = decide._evaluate_chunk
    parent = os.getpid()

    def note(line: str) -> None:
        with events.open("a") as out:
            out.write(f"{os.getpid()} {line}\n")

    class Cyclic:
        def __init__(self, first: int) -> None:
            self.me, self.first = self, first

        def __del__(self) -> None:
            note(f"freed {self.first}")

    def spy(store: StateStore, rules: Any, ids: Sequence[int], *rest: Any) -> Any:
        if os.getpid() != parent:
            note(f"start {ids[0]} {gc.isenabled()}")
            Cyclic(ids[0])
            if fail and DOOMED in ids:
                _raising()
        return real(store, rules, ids, *rest)

    monkeypatch.setattr(decide, "_evaluate_chunk", spy)


def _by_worker(events: Path) -> dict[str, list[str]]:
    by_worker: dict[str, list[str]] = {}
    for line in events.read_text().splitlines():
        pid, event = line.split(" ", 1)
        by_worker.setdefault(pid, []).append(event)
    return by_worker


def test_a_worker_collects_after_each_chunk_and_not_while_it_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's collector is off while it evaluates a chunk (a collection scanned the
    chunk's live results, again and again), and a cycle of garbage the chunk made is gone
    before the worker takes its next chunk: none outlives its chunk."""
    _chunks_noted(tmp_path / "events", monkeypatch)
    store = _seeded(f"sqlite:///{tmp_path / 'gc.db'}")
    try:
        _rescore(_agent(store, 2), 1)
    finally:
        store.dispose()
    by_worker = _by_worker(tmp_path / "events")
    starts = [event for seen in by_worker.values() for event in seen if "start" in event]
    assert len(starts) == PERSONS // CHUNK and len(by_worker) == 2
    for seen in by_worker.values():
        firsts = [event.split()[1] for event in seen[::2]]
        assert seen == [e for first in firsts for e in (f"start {first} False",
                                                        f"freed {first}")]


def test_a_failed_chunk_is_collected_too(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _chunks_noted(tmp_path / "events", monkeypatch, fail=True)
    store = _seeded(f"sqlite:///{tmp_path / 'gc.db'}")
    _all_dirty(store)
    try:
        with pytest.raises(WorkerFailed):
            _cycle(_agent(store, 2))
    finally:
        store.dispose()
    doomed = DOOMED - DOOMED % CHUNK + 1   # the first person of its chunk
    [seen] = [seen for seen in _by_worker(tmp_path / "events").values()
              if f"start {doomed} False" in seen]
    after = seen[seen.index(f"start {doomed} False") + 1:]
    assert after[:1] == [f"freed {doomed}"]
