"""What every report shares: the period it covers, its time buckets, and its result shape.

A report answers with one or more tables (a title, column names, rows of plain values), so
the CLI can print it, write it as JSON or CSV, and a web page can draw it, all from the same
data. Times are UTC: a day, a week (starting Monday) and a month are UTC calendar units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from statistics import median
from typing import Any, Literal

from syncagent.engine.loader import Rules

Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")
DEFAULT_DAYS = 90


@dataclass(frozen=True)
class Period:
    """``[since, until)`` in UTC, cut into buckets of ``by``."""

    since: datetime
    until: datetime
    by: Granularity = "week"

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("a report period needs timezone-aware datetimes")

    def holds(self, moment: datetime | None) -> bool:
        return moment is not None and self.since <= moment < self.until

    def bucket_of(self, moment: datetime) -> date:
        """The first day of the bucket ``moment`` falls in."""
        day = moment.astimezone(UTC).date()
        if self.by == "week":
            return day - timedelta(days=day.weekday())
        if self.by == "month":
            return day.replace(day=1)
        return day

    def buckets(self) -> list[date]:
        """Every bucket the period touches, in order, the empty ones included."""
        out: list[date] = []
        current = self.bucket_of(self.since)
        last = self.bucket_of(self.until - timedelta(microseconds=1))
        while current <= last:
            out.append(current)
            current = _next_bucket(current, self.by)
        return out


def _next_bucket(start: date, by: Granularity) -> date:
    if by == "day":
        return start + timedelta(days=1)
    if by == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def default_period(now: datetime, by: Granularity = "week",
                   since: datetime | None = None, until: datetime | None = None) -> Period:
    """The period a report covers when the caller leaves ends open: up to the end of today
    (UTC), from ``DEFAULT_DAYS`` before that."""
    end = until or datetime.combine(now.astimezone(UTC).date() + timedelta(days=1),
                                    datetime.min.time(), tzinfo=UTC)
    start = since or end - timedelta(days=DEFAULT_DAYS)
    return Period(start, end, by)


@dataclass(frozen=True)
class RulesChange:
    """For rules-impact: the proposed mapping files, and the owners that mean "assigned by
    no one" (as the cycle treats them)."""

    proposed: Rules
    machine_owners: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Options:
    """Settings some reports take; each report reads only the ones it names."""

    now: datetime
    split: Literal["source", "segment", "none"] = "source"
    untouched_days: int = 5
    change: RulesChange | None = None


@dataclass
class Table:
    """One table of a report: rows are dicts keyed by ``columns``."""

    title: str
    columns: Sequence[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        self.rows.append(dict(zip(self.columns, values, strict=True)))


@dataclass
class ReportResult:
    """A report's answer: its tables plus notes a reader needs (what a figure leaves out)."""

    report: str
    period: Period
    tables: list[Table]
    notes: list[str] = field(default_factory=list)

    def table(self, title: str) -> Table:
        return next(t for t in self.tables if t.title == title)

    def to_dict(self) -> dict[str, Any]:
        return {"report": self.report,
                "period": {"since": self.period.since.isoformat(),
                           "until": self.period.until.isoformat(), "by": self.period.by},
                "tables": [{"title": t.title, "columns": list(t.columns),
                            "rows": [{k: plain(v) for k, v in row.items()} for row in t.rows]}
                           for t in self.tables],
                "notes": self.notes}


def plain(value: Any) -> Any:
    """A value as JSON and CSV take it (dates as ISO text)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def rate(part: int, whole: int) -> float | None:
    """``part / whole`` to 4 places; None (not 0) when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


def median_hours(spans: Sequence[timedelta]) -> float | None:
    return round(median(s.total_seconds() for s in spans) / 3600, 2) if spans else None
