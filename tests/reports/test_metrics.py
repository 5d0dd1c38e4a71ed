"""The Prometheus metrics, read from the seeded state DB (conftest.py) and parsed back with
prometheus-client's own parser, as a scraper would read them."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from state.store import StateStore
from syncagent.errors import ConfigError
from syncagent.reports.metrics import StateCollector, exposition, serve_metrics
from tests.reports.conftest import NOW, add_runs, at


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_an_empty_state_db_gives_zeros_not_errors(state_url: str) -> None:
    store = StateStore(state_url)
    store.upgrade()
    samples = _samples(exposition(store).decode())
    store.dispose()
    assert samples[("syncagent_cycles_total", (("status", "ok"),))] == 0
    assert samples[("syncagent_last_success_timestamp_seconds", ())] == 0
    assert samples[("syncagent_dead_letters", ())] == 0


def test_metrics_of_the_seeded_runs_outbox_and_timers(seeded: StateStore) -> None:
    add_runs(seeded)
    samples = _samples(exposition(seeded).decode())
    assert [samples[("syncagent_cycles_total", (("status", s),))]
            for s in ("ok", "failed", "partial")] == [2, 1, 0]
    assert samples[("syncagent_cycle_seconds_total", ())] == 100.0   # 30 + 10 + 60
    assert samples[("syncagent_last_success_timestamp_seconds", ())] == \
        at(30, 9).replace(minute=1).timestamp()
    assert samples[("syncagent_records_total", (("kind", "written"),
                                                ("system", "salesforce")))] == 5
    assert samples[("syncagent_records_total", (("kind", "pulled"), ("system", "all")))] == 30
    assert samples[("syncagent_api_budget_24h", (("system", "salesforce"),))] == 100
    assert samples[("syncagent_api_calls_24h", (("system", "salesforce"),))] == 19
    assert samples[("syncagent_outbox_rows", (("status", "dead"),))] == 3
    assert samples[("syncagent_dead_letters", ())] == 3
    assert samples[("syncagent_sla_timers_fired_total", (("kind", "remind"),))] == 1
    assert samples[("syncagent_sla_timers_fired_total", (("kind", "escalate"),))] == 1


def test_timers_due_count_pending_steps_past_their_time(seeded: StateStore) -> None:
    def due_at(now: datetime) -> float:
        collector = StateCollector(seeded, clock=lambda: now)
        family = next(f for f in collector.collect() if f.name == "syncagent_sla_timers_due")
        return sum(s.value for s in family.samples if s.labels["kind"] == "qualify")

    # P4's qualify step is due 2 Dec 11:00; the cancelled remind never counts
    assert due_at(NOW) == 0
    assert due_at(datetime(2026, 12, 2, 11, tzinfo=UTC)) == 1


def test_the_metrics_server_answers_on_localhost(seeded: StateStore) -> None:
    server = serve_metrics(seeded, port=0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert _samples(text)[("syncagent_sla_timers_fired_total", (("kind", "remind"),))] == 1


def test_a_taken_port_is_named_with_what_to_do(seeded: StateStore) -> None:
    server = serve_metrics(seeded, port=0)
    port = server.server_address[1]
    try:
        with pytest.raises(ConfigError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            serve_metrics(seeded, port=port)
    finally:
        server.shutdown()
        server.server_close()
