"""A worker's chunk carries every JSON column value (a decision's reasons, each write's
fields, each handoff row's detail) as the store's JSON text in UTF-8 (bytes), the text the
commit would have made of the value, poison values cleaned; everything else as objects.

That the stored results stay those of the in-process path (chunks settled in the main
process beside a worker's text included) is tests/pipeline/test_workers.py's."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from state.common import as_tuples, field_names
from state.flags import Flag
from state.handoff import FeedbackRow, StageChange, TaskRecord, TimerRow
from state.sanitise import dumps
from state.store import NewOutboxRow
from syncagent.engine import RoutingState
from syncagent.pipeline import cycle, decide
from syncagent.pipeline import workers as pool_module
from syncagent.pipeline.cycle import CycleOptions, run_cycle
from syncagent.pipeline.handoff import Handoff, taken, task_context
from syncagent.pipeline.pieces import Piece, pieces_of
from syncagent.pipeline.wire import as_text as _as_text
from syncagent.pipeline.wire import loads
from syncagent.pipeline.workers import Job, RotationBoard
from tests.pipeline.test_rescore_equivalence import NOW
from tests.pipeline.test_workers import CHUNK, _agent, _seeded

POISON: dict[str, Any] = {"nan": math.nan, "inf": [math.inf], "nul": "a\x00b",
                          "lone": "\ud800", "k\x00": {"deep": -math.inf}}


def _row(key: str, fields: Any) -> NewOutboxRow:
    return NewOutboxRow("hubspot", "contacts", "update", fields, key, "r1", 1)


def _piece() -> Piece:
    handoff = Handoff()
    rows = handoff.rows
    rows.history.append(StageChange("h", 1, NOW, None, "mql", "rule", None, dict(POISON)))
    rows.timers.append(TimerRow("t", 1, "first_touch", NOW, NOW, None, detail={"n": 1}))
    rows.tasks.append(TaskRecord("k", 1, "alert", "task", None, None, NOW, dict(POISON)))
    rows.feedback.append(FeedbackRow("f", 1, NOW, "recycled", None, None, None, None, None,
                                     dict(POISON)))
    handoff.outbox.append(_row("task", {"subject": "nul\x00"}))
    return Piece(NOW, {"person_id": 1, "grade": "A", "reasons": dict(POISON)},
                 [_row("a", dict(POISON)), _row("b", {"plain": 1})],
                 [Flag("k", "kind", {"detail": math.nan})], handoff=taken(handoff))


def _field(row: Any, kind: type, name: str) -> Any:
    """A row's field, the row an object or its tuple (common.as_tuples: a worker sends it)."""
    return row[field_names(kind).index(name)] if type(row) is tuple else getattr(row, name)


def _json_values(piece: Piece) -> list[Any]:
    history, timers, _cancelled, tasks, feedback, outbox, _flags = piece.handoff
    detailed = [(row, kind) for rows, kind in ((history, StageChange), (timers, TimerRow),
                                               (tasks, TaskRecord), (feedback, FeedbackRow))
                for row in rows]
    return ([piece.decision["reasons"]] if piece.decision is not None else []) + \
        [_field(row, NewOutboxRow, "fields") for row in [*piece.rows, *outbox]] + \
        [_field(row, kind, "detail") for row, kind in detailed]


def _as_rows(piece: Piece) -> list[tuple[Any, ...]]:
    """Every planned write and handoff row of the piece as its tuple, JSON left out."""
    history, timers, _cancelled, tasks, feedback, outbox, _flags = piece.handoff
    out = []
    for rows, kind, text in ((piece.rows, NewOutboxRow, "fields"), (outbox, NewOutboxRow,
                             "fields"), (history, StageChange, "detail"), (timers, TimerRow,
                             "detail"), (tasks, TaskRecord, "detail"),
                             (feedback, FeedbackRow, "detail")):
        skip = field_names(kind).index(text)
        out += [tuple(v for n, v in enumerate(row) if n != skip)
                for row in as_tuples(rows, kind)]
    return out


def test_every_json_value_of_a_piece_becomes_the_serializers_text() -> None:
    piece = _piece()
    values = _json_values(piece)
    _as_text(piece)
    texts = _json_values(piece)
    assert len(texts) == 8
    assert all(type(t) is bytes for t in texts)
    assert [t.decode() for t in texts] == [dumps(v) for v in values]
    history, timers, _cancelled, tasks, feedback, outbox, _flags = piece.handoff
    assert all(type(row) is tuple for row in [*piece.rows, *history, *timers, *tasks,
                                              *feedback, *outbox])
    assert json.loads(texts[0]) == {"nan": None, "inf": [None], "nul": "ab",
                                    "lone": "\ufffd", "k": {"deep": None}}
    assert type(piece.flags[0].detail) is dict, "data-quality items are stored elsewhere"
    assert piece.decision is not None and piece.decision["grade"] == "A"


def test_a_row_seen_twice_is_encoded_once() -> None:
    """A row object two pieces share (or a piece walked twice) is not encoded again."""
    piece = _piece()
    _as_text(piece)
    first = _json_values(piece)
    _as_text(piece)
    assert all(a is b for a, b in zip(first, _json_values(piece), strict=True))


def test_a_piece_with_nothing_evaluated_is_left_as_it_is() -> None:
    """Persons whose records are all gone, or whose rules failed: no decision, no rows."""
    gone, failed = Piece(None, gone=True), Piece(NOW)
    for piece in (gone, failed):
        _as_text(piece)
    assert gone.decision is None and not gone.rows and failed.decision is None


def test_a_workers_chunk_is_the_in_process_chunk_with_its_json_as_text(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'wire.db'}"
    store = _seeded(url)
    agent = _agent(store, 1)
    now = NOW + timedelta(days=1)
    world = decide.load_world(store, agent.machine_owners)
    context = cycle.plan_context(agent, world)
    tasks = task_context(agent.connectors, world,
                         agent.rules.compiled.routing.sla.calendar.zone)
    monkeypatch.setattr(pool_module, "_worker", (
        Job(url, agent.rules, world, context, tasks, now), store, RotationBoard()))
    ids = next(decide.all_persons(store, size=60))
    routing = RoutingState.from_dict(None)
    done = loads(pool_module._work(0, ids, routing))
    here = pieces_of(store, decide._evaluate_chunk(store, agent.rules, ids, world, now,
                                                   routing),
                     context, tasks, agent.rules.source, now)
    assert sorted(done.pieces) == sorted(here) == sorted(ids)
    texts = [t for pid in ids for t in _json_values(done.pieces[pid])]
    values = [v for pid in ids for v in _json_values(here[pid])]
    assert len(texts) == len(values) > len(ids)
    assert all(type(t) is bytes for t in texts)
    assert [t.decode() for t in texts] == [dumps(v) for v in values]
    for pid in ids:   # the rest as it was
        ours, theirs = here[pid], done.pieces[pid]
        assert _as_rows(theirs) == _as_rows(ours)
        assert (theirs.due, theirs.flags, theirs.poison, theirs.gone) == \
            (ours.due, ours.flags, ours.poison, ours.gone)
        if ours.decision is not None and theirs.decision is not None:
            assert {**theirs.decision, "reasons": None} == {**ours.decision, "reasons": None}
    store.dispose()


def _figures(report: cycle.CycleReport) -> tuple[Any, ...]:
    return (report.status, report.persons_evaluated, report.planned, report.tasks_queued)


def test_what_this_process_counts_of_a_workers_text_is_what_it_counts_of_objects(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's figures (counted here from the merged chunks, whose JSON values are
    text) are the in-process path's; a cycle with an ``on_plans`` callback evaluates here,
    its callback seeing every plan with its decision (never text)."""
    monkeypatch.setattr(cycle, "all_persons", partial(decide.all_persons, size=CHUNK))
    figures, seen = [], []
    for n, workers in enumerate((0, 2, 2)):
        store = _seeded(f"sqlite:///{tmp_path / f'{n}.db'}")
        agent = _agent(store, workers)
        plans: list[Any] = []
        on_plans = plans.extend if n == 2 else None
        agent.clock = lambda: NOW + timedelta(days=1)
        figures.append(_figures(run_cycle(agent, options=CycleOptions(
            rescore=True, pull=False, push=False, on_plans=on_plans))))
        seen.append(plans)
        store.dispose()
    assert figures[0] == figures[1] == figures[2] and figures[0][1] > 2 * CHUNK
    assert len(seen[2]) == figures[2][1]
    assert all(isinstance(plan.reasons_text, str) and not isinstance(plan.decision, bytes)
               for plan in seen[2])
