"""A backfill that runs longer than the properties' TTL reads them once (issue 18: the 100k
backfill read them twice, the preflight's read having gone stale by the time planning asked
which properties the portal has); the next cycle reads them again, as the TTL wants."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import Progress
from connectors.hubspot import schema
from syncagent.pipeline.cycle import CycleOptions, run_cycle
from tests.e2e.conftest import WorldFactory


class _Clock:
    """What the properties' cache takes for now: time jumps while the pull reads."""

    offset = timedelta(0)


class _Datetime(datetime):
    @classmethod
    def now(cls, tz: Any = None) -> _Datetime:
        real = datetime.now(tz or UTC) + _Clock.offset
        return cls.fromtimestamp(real.timestamp(), tz or UTC)


def test_a_cycle_longer_than_the_ttl_reads_the_properties_once(
        world_factory: WorldFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schema, "datetime", _Datetime)
    monkeypatch.setattr(_Clock, "offset", timedelta(0))
    world = world_factory(leads=60, seed=41)

    def hours_pass(_progress: Progress) -> None:
        _Clock.offset += schema.SCHEMA_TTL    # every page read: a TTL later

    hubspot = world.agent.connectors["hubspot"]
    report = run_cycle(world.agent, threading.Event(), CycleOptions(progress=hours_pass))
    assert report.written["hubspot"] > 0, report.as_json()
    assert _Clock.offset > schema.SCHEMA_TTL, "the pull outlasted the TTL"
    assert hubspot.calls.by_operation()["properties"] == 1
    run_cycle(world.agent, threading.Event(), CycleOptions())
    assert hubspot.calls.by_operation()["properties"] == 2, "the next cycle reads again"
