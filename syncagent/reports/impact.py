"""Rules impact: what a proposed set of mapping files would change, before it ships.

Both rule sets evaluate every person from the same stored data, at the same moment, from the
same routing rotation: a difference is the rules' doing, not time's (score decay) or the
data's. Nothing is written. The answer is a transition matrix per decision part (grade,
stage, segment, owner, track; before -> after, with the count of persons) and the score
distribution under each rule set.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import datetime
from statistics import mean, median
from typing import Any

from state.runs import Key
from state.store import StateStore
from syncagent.engine import RoutingState, Rules
from syncagent.pipeline.decide import World, all_persons, evaluate_persons, load_world
from syncagent.reports.data import ReportSource
from syncagent.reports.model import (
    Options,
    Period,
    ReportResult,
    RulesChange,
    Table,
    default_period,
    rate,
)

PARTS = ("grade", "stage", "segment", "owner", "track")
BAND = 25                 # score band width
TOP_BAND = 200            # scores at or above it share the last band
NONE = "(none)"


def decisions_under(store: StateStore, rules: Rules, now: datetime, world: World
                    ) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(person id, decision row) for every person ``rules`` can evaluate, nothing written."""
    routing = RoutingState.from_dict(store.runs.get_value(Key.ROUTING_STATE))
    for chunk in evaluate_persons(store, rules, all_persons(store), world, now, routing):
        for row in chunk.decisions:
            yield row["person_id"], row


def score_band(score: float | None) -> str:
    if score is None:
        return NONE
    if score < 0:
        return "< 0"
    if score >= TOP_BAND:
        return f"{TOP_BAND}+"
    low = int(score // BAND) * BAND
    return f"{low}-{low + BAND - 1}"


def _bands() -> list[str]:
    return ["< 0", *(f"{low}-{low + BAND - 1}" for low in range(0, TOP_BAND, BAND)),
            f"{TOP_BAND}+"]


def _stats(scores: list[float]) -> list[float | None]:
    if not scores:
        return [None, None, None, None]
    ordered = sorted(scores)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return [round(mean(ordered), 2), round(median(ordered), 2), p90, ordered[-1]]


def _label(part: str, value: Any, users: Mapping[str, str]) -> str:
    if value in (None, ""):
        return NONE
    return users.get(str(value), str(value)) if part == "owner" else str(value)


def rules_impact(source: ReportSource, period: Period, options: Options) -> ReportResult:
    """Every person under the live rules and under ``options.change.proposed``: per decision
    part, how many change and the before -> after counts; the score bands and statistics
    before and after. The period is not used: it is about the persons the DB holds now."""
    if source.rules is None or options.change is None:
        raise ValueError("rules-impact needs the live and the proposed mapping files")
    world = load_world(source.store, options.change.machine_owners)
    before = dict(decisions_under(source.store, source.rules, options.now, world))
    after = dict(decisions_under(source.store, options.change.proposed, options.now, world))
    both = sorted(before.keys() & after.keys())
    moves: Counter[tuple[str, str, str]] = Counter()
    for pid in both:
        for part in PARTS:
            moves[(part, _label(part, before[pid][part], source.users),
                   _label(part, after[pid][part], source.users))] += 1
    summary = Table("summary", ("part", "persons", "changed", "share_changed"))
    for part in PARTS:
        changed = sum(n for (p, old, new), n in moves.items() if p == part and old != new)
        summary.add(part, len(both), changed, rate(changed, len(both)))
    matrix = Table("transitions", ("part", "before", "after", "persons"))
    for (part, old, new), count in sorted(moves.items(), key=lambda item: (
            PARTS.index(item[0][0]), item[0][1], item[0][2])):
        matrix.add(part, old, new, count)
    return ReportResult("rules-impact", period, [
        summary, matrix, _score_bands(before, after, both), _score_stats(before, after, both)],
        notes=[f"Evaluated at {options.now.isoformat()} from the state DB; nothing written.",
               *([f"{len(before) - len(both)} persons only the live rules could evaluate, "
                  f"{len(after) - len(both)} only the proposed ones."]
                 if len(both) != max(len(before), len(after)) else [])])


def _score_bands(before: Mapping[int, Mapping[str, Any]], after: Mapping[int, Mapping[str, Any]],
                 both: list[int]) -> Table:
    old = Counter(score_band(before[pid]["score"]) for pid in both)
    new = Counter(score_band(after[pid]["score"]) for pid in both)
    table = Table("score bands", ("band", "before", "after"))
    for band in _bands():
        table.add(band, old[band], new[band])
    return table


def _score_stats(before: Mapping[int, Mapping[str, Any]], after: Mapping[int, Mapping[str, Any]],
                 both: list[int]) -> Table:
    old = _stats([before[pid]["score"] for pid in both if before[pid]["score"] is not None])
    new = _stats([after[pid]["score"] for pid in both if after[pid]["score"] is not None])
    table = Table("score statistics", ("statistic", "before", "after"))
    for index, name in enumerate(("mean", "median", "p90", "max")):
        table.add(name, old[index], new[index])
    return table


def impact_summary(store: StateStore, live: Rules, proposed: Rules, now: datetime,
                   machine_owners: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The rules-impact report as data (what `dry-run --json` prints beside its changes)."""
    options = Options(now=now, change=RulesChange(proposed, machine_owners))
    return rules_impact(ReportSource(store, live), default_period(now), options).to_dict()
