"""Prometheus metrics of the agent, read from the state DB at each scrape.

Reading the state DB (not counters kept in one process's memory) gives the same figures from
any process that can reach it: the scheduler (`run --metrics-port`), or a second process on a
shared Postgres. Totals are sums over the runs table, so they survive restarts; a counter
only falls if old runs are deleted, which Prometheus's rate() reads as a reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from state import models as m
from state.runs import Key
from state.store import StateStore
from syncagent.errors import ConfigError

STATUSES = ("ok", "partial", "failed", "stopped", "running")


class StateCollector(Collector):
    """Collects every syncagent metric from one state DB."""

    def __init__(self, store: StateStore, clock: Any = None) -> None:
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))

    def collect(self) -> Iterator[Metric]:
        yield from self._cycles()
        yield from self._records()
        yield from self._api()
        yield from self._outbox()
        yield from self._timers()

    def _cycles(self) -> Iterator[Metric]:
        run = m.Run
        with self.store.sessions.read() as session:
            by_status = dict(session.execute(select(run.status, func.count())
                                             .group_by(run.status)).all())
            spans = session.execute(select(run.started_at, run.finished_at)
                                    .where(run.finished_at.is_not(None))).all()
        total_seconds = sum((end - start).total_seconds() for start, end in spans
                            if start is not None and end is not None)
        cycles = CounterMetricFamily("syncagent_cycles", "Cycles run, by how they ended.",
                                     labels=["status"])
        for status in sorted({*STATUSES, *by_status}):
            cycles.add_metric([status], int(by_status.get(status, 0)))
        yield cycles
        yield CounterMetricFamily("syncagent_cycle_seconds",
                                  "Time spent in finished cycles.",
                                  value=float(total_seconds))
        last = self.store.runs.last_completed_at()
        yield GaugeMetricFamily("syncagent_last_success_timestamp_seconds",
                                "When the last cycle that ran to its end (ok or partial) "
                                "finished; 0 when none has.",
                                value=last.timestamp() if last else 0.0)

    def _records(self) -> Iterator[Metric]:
        """Records pulled, written, created and rejected, summed over every run (written and
        created per system); pulled per stream of the last cycle."""
        totals: dict[tuple[str, str], int] = {}
        with self.store.sessions.read() as session:
            for counts in session.scalars(select(m.Run.counts)):
                for kind in ("written", "created"):
                    for system, n in ((counts or {}).get(kind) or {}).items():
                        totals[(kind, system)] = totals.get((kind, system), 0) + int(n or 0)
                for kind in ("pulled", "rejected"):
                    value = (counts or {}).get(kind)
                    if isinstance(value, int):
                        totals[(kind, "all")] = totals.get((kind, "all"), 0) + value
        records = CounterMetricFamily("syncagent_records",
                                      "Records pulled, written, created or rejected "
                                      "(system 'all' where the runs table keeps no split).",
                                      labels=["kind", "system"])
        for (kind, system), n in sorted(totals.items()):
            records.add_metric([kind, system], n)
        yield records
        last = self.store.runs.get_value(Key.LAST_CYCLE, {}) or {}
        pulled = GaugeMetricFamily("syncagent_last_cycle_pulled_records",
                                   "Records the last cycle read, per stream.",
                                   labels=["stream"])
        for stream, n in sorted((last.get("pulled") or {}).items()):
            pulled.add_metric([stream], int(n or 0))
        yield pulled

    def _api(self) -> Iterator[Metric]:
        usage = self.store.runs.get_value(Key.API_USAGE, {}) or {}
        calls = GaugeMetricFamily("syncagent_api_calls_24h",
                                  "The agent's API calls over the rolling day.", labels=["system"])
        budget = GaugeMetricFamily("syncagent_api_budget_24h",
                                   "The agent's daily API budget.", labels=["system"])
        for system, status in sorted(usage.items()):
            figures = (status or {}).get("budget") or {}
            if isinstance(figures.get("agent_calls_24h"), int | float):
                calls.add_metric([system], figures["agent_calls_24h"])
            if isinstance(figures.get("agent_limit"), int | float):
                budget.add_metric([system], figures["agent_limit"])
        yield calls
        yield budget

    def _outbox(self) -> Iterator[Metric]:
        counts = self.store.outbox.counts()
        depth = GaugeMetricFamily("syncagent_outbox_rows", "Outbox rows by status.",
                                  labels=["status"])
        for status, n in sorted(counts.items()):
            depth.add_metric([status], n)
        yield depth
        yield GaugeMetricFamily("syncagent_dead_letters", "Writes that failed for good.",
                                value=counts.get("dead", 0))

    def _timers(self) -> Iterator[Metric]:
        timer = m.SlaTimerRow
        now = self.clock()
        with self.store.sessions.read() as session:
            fired = dict(session.execute(select(timer.kind, func.count())
                                         .where(timer.status == "fired")
                                         .group_by(timer.kind)).all())
            due = dict(session.execute(select(timer.kind, func.count())
                                       .where(timer.status == "pending", timer.due_at <= now)
                                       .group_by(timer.kind)).all())
        fired_metric = CounterMetricFamily("syncagent_sla_timers_fired",
                                           "SLA timer steps fired.", labels=["kind"])
        due_metric = GaugeMetricFamily("syncagent_sla_timers_due",
                                       "SLA timer steps due and not fired yet.", labels=["kind"])
        for kind in sorted({*fired, *due}):
            fired_metric.add_metric([kind], int(fired.get(kind, 0)))
            due_metric.add_metric([kind], int(due.get(kind, 0)))
        yield fired_metric
        yield due_metric


def registry_for(store: StateStore) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector(store))
    return registry


def exposition(store: StateStore) -> bytes:
    """The metrics in Prometheus's text format (what /metrics answers)."""
    return generate_latest(registry_for(store))


def serve_metrics(store: StateStore, port: int, addr: str = "127.0.0.1") -> WSGIServer:
    """Answer GET /metrics on ``addr:port`` from a daemon thread (``port`` 0: any free one);
    the caller may ``shutdown()`` the returned server."""
    try:
        server, _thread = start_http_server(port, addr=addr, registry=registry_for(store))
    except OSError as error:  # the port is taken, or not ours to bind
        raise ConfigError(f"cannot serve metrics on {addr}:{port} ({error.strerror or error})",
                          hint="Pick a free port for --metrics-port.") from None
    return server
