"""Benchmark: a rescore of a million persons, with no API, on SQLite and Postgres.

Seeds a state DB directly (bench/scale_seed.py: persons, their records in both systems, their
activities, the org's users and accounts) and then runs the evaluate-and-plan cycle that
`syncagent rescore` runs (`run_cycle` with ``rescore``, no pull), in a child process so its
peak RSS is its own. The planned writes stay in the outbox: pushing them is the API's time,
which bench/e2e.py measures. Seeding time (with Postgres's ANALYZE after it, as autovacuum
would run after a backfill) is reported and excluded from the rate.

Prints one JSON object: ``runs`` holds, per backend, ``persons``, ``seconds``,
``persons_per_s``, ``peak_rss_mb``, ``cpu_seconds`` (the rescore's process), ``load_average``
(at its end) and ``backend`` (with the seeding time and rows planned), against the targets
(RSS under 400 MB, at least 10,000 persons/s at a million persons).

The rescore evaluates in ``workers`` processes beside its own (pipeline/workers.py; the
agent's default unless ``--workers N``, 0: all in one process). ``peak_rss_mb`` is the
rescore's own process; ``tree_peak_rss_mb`` the peak of the summed RSS of it and its workers,
sampled every 0.2 s (pages the forked workers share with it are counted once per process: an
upper bound), ``tree_peak_pss_mb`` the same with each shared page split between its sharers.
The targets are judged on ``tree_peak_rss_mb``. ``cpu_seconds`` counts the workers' CPU too
(``workers_cpu_seconds``).

    python bench/scale.py [--persons 1000000] [--postgres URL] [--no-sqlite] [--workers N]
                          [--again]

With ``--again`` a second rescore follows the first, a day later (its clock): the steady
state, where every person has a stored decision that the evaluation reads back. Its figures
are under ``again`` in the run (the same keys as the run's own; RSS is the whole child's).

With ``SYNCAGENT_BENCH_PROFILE=DIR`` the rescore's threads are profiled as in bench/e2e.py
(DIR/<thread>.prof, DIR/all.prof) and each evaluation worker too (DIR/worker-<pid>.prof).

The host's part in the figures (bench/host.py): ``host`` gives the CPU time of two fixed
workloads before and after the runs (``python_loop_ns``, ``json_dumps_us``: compare them
before comparing two runs' rates), each run the share of CPU time stolen by the hypervisor
while it rescored (``steal_percent``) and, on a Postgres server on this host, the server's CPU
(``server_cpu_seconds``, ``server_cpu_us_per_person``), which ``cpu_seconds`` leaves out.
``cores_at_target`` turns the CPU a person (the agent's and that server's) into the cores
10,000 persons/s would keep busy, beside the ``cores`` this host gives: where it exceeds
them, the rate target is out of this host's reach whatever the scheduling. It moves with the
host's speed, as the CPU seconds do; bench/instructions.py counts instead.

``--postgres`` takes a SQLAlchemy URL (postgresql+psycopg://postgres@127.0.0.1:5432/test);
the run uses a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.host import ServerCpu, Steal, probe  # noqa: E402
from bench.proctree import TreeMemory, peak_rss_mb  # noqa: E402

TARGET_RSS_MB = 400
TARGET_RATE = 10_000
PROFILE_ENV = "SYNCAGENT_BENCH_PROFILE"   # a folder: cProfile the child (bench/e2e_profile.py)


def child_rescore(state_url: str, workers: int | None, again: bool = False) -> None:
    """In the child: one rescore cycle (pull and push left out), then its figures; with
    ``again``, a second one a day later, whose figures are under ``again``."""
    from connectors.registry import registered
    from state.store import StateStore
    from syncagent.engine import load_rules
    from syncagent.pipeline.cycle import Agent

    store = StateStore(state_url)
    connectors: dict[str, Any] = {system: OfflineConnector(profile)
                                  for system, profile in registered().items()
                                  if profile.connect is not None}
    agent = Agent(store, connectors, load_rules(ROOT / "mappings"), holder="bench-scale",
                  workers=workers)
    profile_to = os.environ.get(PROFILE_ENV)
    profiles = None
    if profile_to:   # opt-in, for measuring only (bench/e2e_profile.py)
        from bench.e2e_profile import ThreadProfiles

        profiles = ThreadProfiles()
        profiles.start()
        _profile_workers()
    figures = _timed_rescore(agent)
    if profiles is not None and profile_to:
        profiles.dump(profile_to)
    if again:
        # steady state: every person has a stored decision, read back (decisions.before)
        later = agent.clock() + timedelta(days=1)
        again_agent = Agent(store, connectors, load_rules(ROOT / "mappings"),
                            holder="bench-scale", workers=workers, clock=lambda: later)
        figures["again"] = _timed_rescore(again_agent)
    figures.update(peak_rss_mb=peak_rss_mb())
    print(json.dumps(figures))


def _timed_rescore(agent: Any) -> dict[str, Any]:
    """One rescore cycle and its figures (the workers' CPU: the pool's processes that ended
    during it, joined by its end)."""
    from syncagent.pipeline.cycle import CycleOptions, run_cycle
    from syncagent.pipeline.workers import worker_count

    children_before = children_cpu()
    started, cpu_started = time.perf_counter(), time.process_time()
    report = run_cycle(agent, options=CycleOptions(rescore=True, pull=False, push=False))
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    workers_cpu = children_cpu() - children_before
    cpu += workers_cpu
    # CPU time (all threads of the agent's process; the Postgres server's is not in it) says
    # what the run cost on a machine whose cores others share, where wall time says little.
    return {"persons": report.persons_evaluated, "seconds": round(seconds, 1),
            "persons_per_s": round(report.persons_evaluated / max(seconds, 1e-9)),
            "cpu_seconds": round(cpu, 1),
            "persons_per_cpu_s": round(report.persons_evaluated / max(cpu, 1e-9)),
            "workers": worker_count(agent.workers, rescore=True),
            "workers_cpu_seconds": round(workers_cpu, 1),
            "load_average": os.getloadavg()[0],
            "planned": report.planned, "status": report.status}


_pool_work: Any = None        # the pool's own chunk function, which `_profiled_work` runs
_worker_profile: Any = None   # in an evaluation worker: its cProfile (``_profile_workers``)


def _profile_workers() -> None:
    """Each evaluation worker's chunks under a cProfile of its own (its CPU time), written
    to ``$SYNCAGENT_BENCH_PROFILE/worker-<pid>.prof`` after each chunk: the pool ends its
    workers, they never return to write it at the end. The workers are forked from this
    process, so they call this module's `_profiled_work` in place of the pool's."""
    from syncagent.pipeline import workers

    global _pool_work
    Path(os.environ[PROFILE_ENV]).mkdir(parents=True, exist_ok=True)
    _pool_work = workers._work
    workers._work = _profiled_work  # type: ignore[assignment]


def _profiled_work(*args: Any) -> Any:
    import cProfile

    global _worker_profile
    if _worker_profile is None:
        _worker_profile = cProfile.Profile(time.thread_time)
    _worker_profile.enable()
    try:
        done = _pool_work(*args)   # the pickle, or its length in a slot (pipeline/wire.py)
        return done
    finally:
        _worker_profile.disable()
        folder = Path(os.environ[PROFILE_ENV])
        _worker_profile.dump_stats(folder / f"worker-{os.getpid()}.prof")


class OfflineConnector:
    """A registered system's profile with no API behind it: enough for evaluate and plan,
    which read only the profile; any call to the remote system is a bug here."""

    def __init__(self, profile: Any) -> None:
        from connectors.base import ApiCallCounter

        self.profile = profile
        self.system = profile.system
        self.calls = ApiCallCounter(profile.system)
        self.api_calls = 0
        self.features_off: Mapping[str, str] = {}
        self.streams: Mapping[str, Any] = {}
        self.max_batch = 200

    def watch(self, stop: threading.Event) -> None:
        """Nothing waits here."""

    def preflight(self) -> None:
        """The bench's org is taken as set up."""

    def __getattr__(self, name: str) -> Any:
        # AttributeError: capability checks (isinstance on a Protocol) see "not offered"
        raise AttributeError(f"the offline connector has no {name}: no API in this bench")


def children_cpu() -> float:
    """CPU seconds of this process's ended and reaped children (the evaluation workers)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(backend: str, state_url: str, persons: int, workers: int | None = None,
        again: bool = False) -> dict[str, Any]:
    from syncagent.pipeline.workers import available_cores

    started = time.perf_counter()
    seeded = seed_state(state_url, persons)
    seed_seconds = time.perf_counter() - started
    command = child_command(state_url, workers, again)
    steal = Steal()
    server = ServerCpu(state_url) if backend == "postgresql" else None
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          cwd=ROOT) as child, TreeMemory(child.pid) as tree:
        stdout, stderr = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"the rescore child failed on {backend}:\n{stderr[-3000:]}")
    figures = json.loads(stdout.strip().splitlines()[-1])
    tree_rss = max(round(tree.rss_kb / 1024, 1), figures["peak_rss_mb"])
    server_figures = _server_figures(server, figures["persons"]
                                     + figures.get("again", {}).get("persons", 0))
    return {"backend": backend, **figures, "tree_peak_rss_mb": tree_rss,
            "tree_peak_pss_mb": round(tree.pss_kb / 1024, 1), **server_figures,
            "cores_at_target": cores_at_target(
                figures["cpu_seconds"], figures["persons"],
                server_figures.get("server_cpu_us_per_person")),
            "cores": available_cores(),   # as the agent counts them for its workers
            "steal_percent": steal.percent(),
            "seed_seconds": round(seed_seconds, 1), "seeded_rows": seeded,
            "meets_targets": tree_rss < TARGET_RSS_MB
            and figures["persons_per_s"] >= TARGET_RATE}


def seed_state(state_url: str, persons: int) -> dict[str, int]:
    """A new state DB at ``state_url`` (its schema made) seeded with ``persons``, its
    statistics gathered (`analyse`); the rows seeded, by table."""
    from bench.scale_seed import seed, utc_now
    from state.store import StateStore

    store = StateStore(state_url)
    store.upgrade()
    try:
        seeded: dict[str, int] = seed(store, persons, utc_now())
        analyse(store)
    finally:
        store.dispose()
    return seeded


def child_command(state_url: str, workers: int | None = None, again: bool = False
                  ) -> list[str]:
    """The command of the rescore child (`child_rescore`) on ``state_url``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child-rescore", state_url]
    if workers is not None:
        command += ["--workers", str(workers)]
    if again:
        command.append("--again")
    return command


def _server_figures(server: ServerCpu | None, persons: int) -> dict[str, Any]:
    """A local Postgres server's CPU during the rescore (both, with ``--again``), in all and
    a person evaluated: on a shared host it competes with the agent for the cores, and the
    client's ``cpu_seconds`` leave it out. Nothing for SQLite."""
    if server is None:
        return {}
    spent = server.seconds()
    return {"server_cpu_seconds": spent,
            "server_cpu_us_per_person": None if spent is None or not persons
            else round(spent / persons * 1e6)}


def cores_at_target(cpu_seconds: float, persons: int,
                    server_us_per_person: float | None = None) -> float | None:
    """The cores the rescore's work would keep busy at TARGET_RATE: its CPU a person (the
    agent's process and its workers; a local Postgres server's, when measured) times the
    rate. Above the host's cores, no scheduling reaches the target on this host; it moves
    with the host's speed as the CPU seconds do (bench/host.py). None without persons. With
    ``--again`` the server's figure is of both rescores (its CPU cannot be split by run)."""
    if persons <= 0:
        return None
    per_person = cpu_seconds / persons + (server_us_per_person or 0) / 1e6
    return round(per_person * TARGET_RATE, 2)


def analyse(store: Any) -> None:
    """Postgres: gather the planner's statistics, as autovacuum does within a minute or so of
    a backfill. Without them, the freshly seeded tables look empty to the planner, and it
    reads a chunk's activities through the first column of their index only (every
    activity of the object, filtered), which no running agent meets."""
    if store.dialect != "postgresql":
        return
    from sqlalchemy import text

    from state.models import Base

    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)  # this schema's
    with store.engine.connect() as connection:
        connection.execute(text(f"ANALYZE {tables}"))
        connection.commit()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--postgres", metavar="URL", help="also run on this Postgres database")
    parser.add_argument("--no-sqlite", action="store_true", help="run on Postgres only")
    parser.add_argument("--workers", type=int, default=None,
                        help="evaluation processes (default: the agent's; 0: none)")
    parser.add_argument("--again", action="store_true",
                        help="then a second rescore a day later, every decision stored")
    parser.add_argument("--child-rescore", metavar="STATE_URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_rescore:
        child_rescore(args.child_rescore, args.workers, args.again)
        return
    host = {"before": probe()}
    runs = []
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as folder:
            runs.append(run("sqlite", f"sqlite:///{folder}/state.db", args.persons,
                            args.workers, args.again))
    if args.postgres:
        from state.scratch import scratch_schema

        with scratch_schema(args.postgres, "scale") as url:
            runs.append(run("postgresql", url, args.persons, args.workers, args.again))
    print(json.dumps({"benchmark": "scale.rescore", "persons": args.persons,
                      "at": datetime.now().astimezone().isoformat(timespec="seconds"),
                      "targets": {"peak_rss_mb_below": TARGET_RSS_MB,
                                  "persons_per_s_at_least": TARGET_RATE},
                      "host": {**host, "after": probe()}, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
