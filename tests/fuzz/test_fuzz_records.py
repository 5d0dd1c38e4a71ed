"""Remote records fuzz: whatever a record holds, it is made storable (no NUL, no lone
surrogate, no NaN, bounded text), and the rules evaluate it without an exception."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given

from state.sanitise import MAX_TEXT, clean_fields, dumps
from syncagent.engine import PersonInput, evaluate, load_rules, profile_from_records
from syncagent.engine.mapping import record_problems
from tests.fuzz.conftest import FUZZ
from tests.fuzz.guard import only_our_errors
from tests.fuzz.strategies import ROOT, remote_records

RULES = load_rules(ROOT / "mappings")
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@dataclasses.dataclass(frozen=True)
class _Record:
    system: str
    object: str
    fields: dict[str, Any]
    modstamp: datetime = NOW
    deleted: bool = False


def _clean_and_evaluate(system: str, object_name: str, fields: dict[str, Any]) -> None:
    clean, problems = clean_fields(fields)
    _assert_storable(json.loads(dumps(clean), parse_constant=_no_constant))
    for value in clean.values():
        if isinstance(value, str):
            assert len(value) <= MAX_TEXT
    assert {name for name, _reason in problems} <= set(clean)
    record = _Record(system, object_name, clean)
    record_problems(record, RULES.compiled.fields)
    profile = profile_from_records([record], RULES)
    evaluate(PersonInput("p1", profile.values), RULES, NOW)


def _no_constant(name: str) -> Any:
    raise AssertionError(f"{name} reached the stored JSON")


def _assert_storable(value: Any) -> None:
    """No NUL and no lone surrogate at any depth, in keys or values (what Postgres refuses)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, dict):
            todo += [*item.keys(), *item.values()]
        elif isinstance(item, list):
            todo += item
        elif isinstance(item, str):
            assert "\x00" not in item
            item.encode("utf-8")


@FUZZ
@given(remote_records)
def test_fuzzed_remote_records_are_stored_and_evaluated(record: Any) -> None:
    system, object_name, fields = record
    only_our_errors("records", lambda: _clean_and_evaluate(system, object_name, fields))
