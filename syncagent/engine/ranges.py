"""A number written into a range enumeration: the ``ranges:`` of a field in fields.yaml.

Some remote fields hold a number as one of a few ranges. HubSpot's contact property
``numberofemployees`` is an enumeration of head-count ranges (``1-5``, ``5-25``, ... ``1000+``):
a plain number written there is refused with ``INVALID_OPTION``. A field's ``ranges`` list, for
the system that holds ranges, the option each number falls in::

    ranges:
      - {hubspot: "1-5", from: 1, below: 5}       # 1 <= n < 5
      - {hubspot: "1000+", from: 1000}            # the last range may be open above

The ranges are in ascending order and meet without a gap or an overlap, so a number falls in
at most one (the loader checks it; see :func:`problems`).

- Written: the option the number falls in. A number outside every range, or a value that is
  not a number, is not written (the record keeps what it holds) and is reported like a value
  no translation knows.
- Read: an option reads as its ``from``, which falls back into the same range, so the planner
  compares range with range and an unchanged field is never rewritten.
- A value the record holds that is not one of the options ("12", a retired option "10-20") is
  kept while it falls in the range the number wants: rewriting it would lose precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from syncagent.engine.normalise import blank, to_number
from syncagent.engine.operators import StrictModel

PathKey = tuple[str | int, ...]


class Range(StrictModel):
    """One option of a range enumeration and the numbers it holds."""

    salesforce: str | None = Field(None, min_length=1, description=(
        "The Salesforce picklist value for numbers in this range."))
    hubspot: str | None = Field(None, min_length=1, description=(
        "The HubSpot enumeration option for numbers in this range."))
    start: float = Field(alias="from", allow_inf_nan=False, description=(
        "The smallest number in the range; an option read back reads as this number."))
    below: float | None = Field(None, allow_inf_nan=False, description=(
        "The range holds numbers below this one. Leave it out on the last range only (no "
        "upper bound)."))

    def options(self) -> dict[str, str]:
        """System -> this range's option, for each system the file's keys name."""
        named = {"hubspot": self.hubspot, "salesforce": self.salesforce}
        return {system: option for system, option in named.items() if option}


@dataclass(frozen=True, slots=True)
class RangeTable:
    """One system's ranges, compiled: (from, below or None, option), ascending."""

    ranges: tuple[tuple[float, float | None, str], ...]

    def option_for(self, value: Any) -> str | None:
        """The option a number falls in; None outside every range or for a non-number."""
        number = to_number(value)
        if number is None:
            return None
        for start, below, option in self.ranges:
            if number >= start and (below is None or number < below):
                return option
        return None

    def read(self, value: Any) -> Any:
        """An option as its ``from`` (whole numbers as int); any other value as it is."""
        if isinstance(value, str):
            folded = value.strip().casefold()
            for start, _, option in self.ranges:
                if option.casefold() == folded:
                    return int(start) if start.is_integer() else start
        return value

    def write(self, value: Any, held: Any = None) -> str | None:
        """The option to write for a canonical number (None: write nothing), keeping what
        the record holds when that reads as a number in the same range."""
        option = self.option_for(value)
        if option is None:
            return None
        if not blank(held) and self.option_for(self.read(held)) == option:
            return str(held)
        return option


def compile_ranges(ranges: Sequence[Range]) -> dict[str, RangeTable]:
    """System -> its table, for each system the ranges name."""
    rows: dict[str, list[tuple[float, float | None, str]]] = {}
    for r in ranges:
        for system, option in r.options().items():
            rows.setdefault(system, []).append((r.start, r.below, option))
    return {system: RangeTable(tuple(table)) for system, table in rows.items()}


def labels(ranges: Sequence[Range], system: str) -> list[tuple[int, str]]:
    """(index in the list, option) of each range that names an option in ``system``."""
    return [(i, r.options()[system]) for i, r in enumerate(ranges) if system in r.options()]


def problems(name: str, field_type: str, ranges: Sequence[Range], mapped: dict[str, bool],
             translated: bool) -> list[tuple[PathKey, str]]:
    """What is wrong with a field's ranges: (path under the field, message). ``mapped`` says
    which systems the field maps to; ``translated`` whether it has a translate table."""
    if not ranges:
        return []
    out: list[tuple[PathKey, str]] = []
    if field_type not in ("integer", "number"):
        out.append((("ranges",), f"field '{name}' has ranges but type '{field_type}'; ranges "
                                 "turn a number into an option: use type integer or number"))
    if translated:
        out.append((("ranges",), f"field '{name}' has both translate and ranges; a field is "
                                 "either a picklist (translate) or a number (ranges)"))
    out.extend(_systems(ranges, mapped))
    out.extend(_order(ranges))
    return out


def _systems(ranges: Sequence[Range], mapped: dict[str, bool]) -> list[tuple[PathKey, str]]:
    named = sorted({system for r in ranges for system in r.options()},
                   key=("salesforce", "hubspot").index)
    out: list[tuple[PathKey, str]] = []
    for system in named:
        if not mapped.get(system):
            out.append((("ranges",), f"ranges name {system} options but the field maps no "
                                     f"{system} field; add it or remove the {system}: keys"))
        seen: dict[str, int] = {}
        for i, option in labels(ranges, system):
            if option.casefold() in seen:
                out.append((("ranges", i, system), f"option '{option}' is already the "
                            f"option of range {seen[option.casefold()] + 1}; each range "
                            "needs its own option"))
            seen.setdefault(option.casefold(), i)
    for i, r in enumerate(ranges):
        missing = [s for s in named if s not in r.options()]
        if not named or missing:
            which = " and ".join(missing) or "hubspot or salesforce"
            out.append((("ranges", i), f"range {i + 1} names no {which} option; give each "
                                       "range the option it writes"))
    return out


def _order(ranges: Sequence[Range]) -> list[tuple[PathKey, str]]:
    """Ascending, each range ending where the next starts; only the last one open above."""
    out: list[tuple[PathKey, str]] = []
    for i, r in enumerate(ranges):
        if r.below is not None and r.below <= r.start:
            out.append((("ranges", i, "below"), f"range {_shown(r)}: below ({r.below:g}) "
                        f"must be greater than from ({r.start:g})"))
        if i == 0:
            continue
        prev = ranges[i - 1]
        if r.start <= prev.start:
            out.append((("ranges", i, "from"), f"range {_shown(r)} (from {r.start:g}) comes "
                        f"after {_shown(prev)} (from {prev.start:g}); list the ranges in "
                        "ascending order"))
        elif prev.below is None:
            out.append((("ranges", i - 1), f"range {_shown(prev)} has no 'below' but is not "
                        "the last; only the last range may be open above"))
        elif r.start < prev.below:
            out.append((("ranges", i, "from"), f"range {_shown(r)} starts at {r.start:g}, "
                        f"inside {_shown(prev)} (below {prev.below:g}); ranges must not "
                        f"overlap: start it at {prev.below:g}"))
        elif r.start > prev.below:
            out.append((("ranges", i, "from"), f"no range holds numbers from "
                        f"{prev.below:g} below {r.start:g} (between {_shown(prev)} and "
                        f"{_shown(r)}); start it at {prev.below:g} or add a range"))
    return out


def _shown(r: Range) -> str:
    option = next(iter(r.options().values()), "")
    return f"'{option}'" if option else f"from {r.start:g}"
