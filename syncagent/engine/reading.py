"""Reading remote records for the mapping: a rule set's fields compiled per (system, object)
into readers (each field's remote name, and how a raw value becomes canonical), the writers
of the same fields, and the values the rules cannot use (record_problems)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from syncagent.engine.normalise import MAX_ABS_NUMBER, blank, value_problem
from syncagent.engine.ranges import RangeTable

if TYPE_CHECKING:
    from syncagent.engine.mapping import CompiledField, RemoteRecordLike

UNREAD = object()
_MEMO_SIZE = 4_096   # texts remembered per field and object
# What record_problems finds, with the place of its record in the records map_person is given
Problem = tuple[int, str, str]   # (that place, remote field, reason)


@dataclass(frozen=True, slots=True)
class Reader:
    """How one field is read from one (system, object): its remote name, then the ranges,
    coercion and translation a raw value goes through."""

    index: int                              # the field's place in the rule set
    name: str
    canonical: str                          # the canonical field's name
    # always_<another system>: what this system holds never counts (map_person skips it)
    alien: bool
    kind: str
    coerce: Callable[[Any], Any]
    ranges: RangeTable | None
    table: Mapping[str, str] | None         # folded remote value -> canonical (None: none)
    numeric: bool                           # an integer or number field (record_problems)
    # raw text -> what it reads as: titles, countries, industries, statuses repeat from
    # person to person, and reading is pure (its results are immutable: text, numbers,
    # None). Bounded: emptied when full, so unique values (names, e-mails) cannot grow it.
    memo: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # raw text of a numeric field -> value_problem's answer (bounded as ``memo`` is)
    judged: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)

    def read(self, raw: Any) -> Any:
        """The canonical value, None for a blank one (what merging takes a blank for)."""
        if type(raw) is not str:
            return self.convert(raw)
        memo = self.memo
        value = memo.get(raw, UNREAD)
        if value is UNREAD:
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            value = memo[raw] = self.convert(raw)
        return value

    def convert(self, raw: Any) -> Any:
        """``read`` without the memo: the value's ranges, coercion and translation."""
        if self.ranges is not None:
            raw = self.ranges.read(raw)
        value = self.coerce(raw)
        if self.table is not None and isinstance(value, str):
            value = self.table.get(value.casefold(), value)
        return None if blank(value) else value

    def note(self, problems: list[Problem], place: int, raw: Any) -> None:
        """Add this present value's problem, if it has one, to ``problems`` as (the record's
        place, the field's name, the reason). (mapping._held asks only for the values that
        may have one: not None, and not text of a field not numeric.)"""
        reason = self.problem(raw)
        if reason is not None:
            problems.append((place, self.name, reason))

    def problem(self, raw: Any) -> str | None:
        """record_problems' answer for this present value of the field: value_problem's,
        but for the values it finds nothing in, told apart first (most values: text of a
        field not numeric, None, a number any field can hold)."""
        if type(raw) is str:
            if not self.numeric:
                return None
            judged = self.judged
            reason = judged.get(raw, UNREAD)
            if reason is UNREAD:
                if len(judged) >= _MEMO_SIZE:
                    judged.clear()
                reason = judged[raw] = value_problem(self.kind, raw)
            return reason  # type: ignore[return-value]
        if raw is None or (type(raw) in _NUMBERS and abs(raw) <= MAX_ABS_NUMBER) \
                or (not self.numeric and not isinstance(raw, float)):
            return None
        return value_problem(self.kind, raw)


# A field written to one (system, object): the field, its remote name, the system's ranges
# (None: none) and whether it translates to the system's spellings.
_Writer: TypeAlias = "tuple[CompiledField, str, RangeTable | None, bool]"


class FieldPlan:
    """A rule set's fields, looked up once per (system, object): which fields a record of it
    holds and under what names, for reading (``map_person``) and for writing
    (``remote_values``). A cycle maps and plans every person with the same few objects, so
    this is what their per-field name look-ups come down to."""

    def __init__(self, fields: Sequence[CompiledField]) -> None:
        self.fields = fields
        self._readers: dict[tuple[str, str], tuple[Reader, ...]] = {}
        self._writers: dict[tuple[str, str], tuple[_Writer, ...]] = {}

    def readers(self, system: str, object_name: str) -> tuple[Reader, ...]:
        key = (system, object_name)
        found = self._readers.get(key)
        if found is None:
            found = self._readers[key] = tuple(
                Reader(i, name, spec.name, spec.only_source and spec.source != system,
                        spec.type, spec.coerce, spec.ranges.get(system),
                        spec.to_canonical.get(system) or None, spec.type in _NUMERIC_KINDS)
                for i, spec in enumerate(self.fields)
                if (name := spec.remote_name(system, object_name)) is not None)
        return found

    def writers(self, system: str, object_name: str) -> tuple[_Writer, ...]:
        """How the fields written to this object are written: not ``dont_sync``, and not
        those whose only source is this very system."""
        key = (system, object_name)
        found = self._writers.get(key)
        if found is None:
            found = self._writers[key] = tuple(
                (spec, name, spec.ranges.get(system), bool(spec.to_remote.get(system)))
                for spec in self.fields
                if spec.sync != "dont_sync" and not (spec.only_source and spec.source == system)
                and (name := spec.remote_name(system, object_name)) is not None)
        return found


_PLANS: dict[int, FieldPlan] = {}
_MAX_PLANS = 8   # rule sets in use at once (a reload makes a new one)


def plan_of(fields: Sequence[CompiledField]) -> FieldPlan:
    """The plan of this very rule set (by identity: the plan holds the fields, so the id
    cannot be reused while it is cached)."""
    plan = _PLANS.get(id(fields))
    if plan is None or plan.fields is not fields:
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        plan = _PLANS[id(fields)] = FieldPlan(fields)
    return plan


def record_problems(record: RemoteRecordLike, fields: Sequence[CompiledField]
                    ) -> list[tuple[str, str]]:
    """(remote field, reason) for each mapped value of this record that reads as blank
    because it cannot be used (NaN, a number beyond any field's precision)."""
    problems: list[tuple[str, str]] = []
    values = record.fields
    for reader in plan_of(fields).readers(record.system, record.object):
        reason = reader.problem(values.get(reader.name))
        if reason is not None:
            problems.append((reader.name, reason))
    return problems


_NUMERIC_KINDS = frozenset({"integer", "number"})
_NUMBERS = frozenset({int, float})   # exactly: not bool, nor a subclass value_problem may judge
