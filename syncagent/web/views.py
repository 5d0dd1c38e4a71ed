"""What a page shows, built from a report's JSON (``ReportResult.to_dict()``): the charts of
each report, the overview's key figures, and the period a request asks for.

Pages are drawn from the very dict `/reports/NAME.json` answers, so each figure on a page can
be traced to that JSON: a table cell is the row's value, a chart mark is the sum of one column
over the rows that share a label, a key figure is the sum of one column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup

from syncagent.commands.report import SPLITS, parse_moment
from syncagent.errors import ConfigError
from syncagent.reports.model import GRANULARITIES, Options, Period, default_period
from syncagent.web.charts import Series, bar_chart, has_data, line_chart

MAX_CHART_LABELS = 20      # categories drawn (sources, campaigns, reps): the first ones
MAX_TIME_LABELS = 400      # time buckets drawn: the latest ones (a year of days fits)


@dataclass(frozen=True)
class ChartSpec:
    """A chart of one report table: a mark per ``label`` value and series; the series are
    ``values`` (columns), or, with ``pivot``, the values of that column (of ``values[0]``)."""

    title: str
    table: str
    label: str
    values: tuple[str, ...]
    kind: str = "bar"              # "bar" or "line"
    pivot: str | None = None
    over_time: bool = False        # labels are time buckets, oldest first

    @property
    def keeps(self) -> slice:
        """The labels drawn when there are too many."""
        return slice(-MAX_TIME_LABELS, None) if self.over_time else slice(MAX_CHART_LABELS)


CHARTS: dict[str, tuple[ChartSpec, ...]] = {
    "leads-over-time": (ChartSpec("Leads, MQLs, SALs and SQLs", "leads over time", "bucket",
                                  ("new_leads", "mqls", "sals", "sqls"), "line", over_time=True),),
    "funnel": (ChartSpec("Leads reaching each stage", "funnel", "stage", ("reached", "now")),),
    "sources": (ChartSpec("Leads, MQLs and SQLs per source", "sources", "source",
                          ("leads", "mqls", "sqls")),),
    "campaigns": (ChartSpec("Responses and what they influenced", "campaigns", "campaign",
                            ("responses", "mqls", "sqls", "opportunities")),),
    "clean-your-room": (ChartSpec("Open and waiting leads per rep", "reps", "rep",
                                  ("open_leads", "waiting")),),
    "mql-to-sal": (ChartSpec("MQLs and accepted per rep", "by rep", "rep",
                             ("mqls", "accepted")),),
    "sync-health": (ChartSpec("Cycles by status", "cycles", "bucket",
                              ("ok", "partial", "failed", "stopped"), over_time=True),
                    ChartSpec("API calls per day", "api calls per day", "day", ("calls",),
                              pivot="system", over_time=True)),
}

# The overview's charts: (report, chart title) of CHARTS.
OVERVIEW_CHARTS = (("leads-over-time", "Leads, MQLs, SALs and SQLs"),
                   ("funnel", "Leads reaching each stage"),
                   ("sync-health", "Cycles by status"))


@dataclass(frozen=True)
class KeyFigure:
    """One number of the overview: the sum of ``column`` over a report table's rows."""

    caption: str
    report: str
    table: str
    column: str
    value: float | None = None


KEY_FIGURES = (KeyFigure("New leads", "leads-over-time", "leads over time", "new_leads"),
               KeyFigure("MQLs", "leads-over-time", "leads over time", "mqls"),
               KeyFigure("SALs", "leads-over-time", "leads over time", "sals"),
               KeyFigure("SQLs", "leads-over-time", "leads over time", "sqls"),
               KeyFigure("Cycles", "sync-health", "cycles", "cycles"),
               KeyFigure("Failed cycles", "sync-health", "cycles", "failed"),
               KeyFigure("Dead letters", "sync-health", "dead letters", "rows"))


@dataclass(frozen=True)
class DrawnChart:
    spec: ChartSpec
    report: str
    svg: Markup | None           # None: nothing to draw in this period
    cut: int = 0                 # labels left out (see ChartSpec.keeps)


def table_of(result: Mapping[str, Any], title: str) -> dict[str, Any] | None:
    return next((t for t in result["tables"] if t["title"] == title), None)


def chart_series(spec: ChartSpec, rows: list[dict[str, Any]]) -> tuple[list[str], Series]:
    """Labels in the order they first appear, each series summed over rows sharing a label."""
    labels: list[str] = []
    sums: dict[str, dict[str, float | None]] = {}
    for row in rows:
        label = str(row.get(spec.label))
        if label not in labels:
            labels.append(label)
        if spec.pivot:
            _add(sums.setdefault(str(row.get(spec.pivot)), {}), label, row.get(spec.values[0]))
        else:
            for column in spec.values:
                _add(sums.setdefault(column, {}), label, row.get(column))
    return labels, {name: [values.get(label) for label in labels]
                    for name, values in sums.items()}


def _add(sums: dict[str, float | None], label: str, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        sums[label] = (sums.get(label) or 0) + value
    else:
        sums.setdefault(label, None)


def draw(report: str, spec: ChartSpec, result: Mapping[str, Any]) -> DrawnChart:
    table = table_of(result, spec.table)
    labels, series = chart_series(spec, table["rows"] if table else [])
    kept = labels[spec.keeps]
    cut = len(labels) - len(kept)
    series = {name: values[spec.keeps] for name, values in series.items()}
    labels = kept
    if not has_data(series):
        return DrawnChart(spec, report, None)
    if spec.kind == "line":
        svg = line_chart(spec.title, labels, series)
    else:
        svg = bar_chart(spec.title, labels, series, categories=not spec.over_time)
    return DrawnChart(spec, report, svg, cut)


def charts_of(report: str, result: Mapping[str, Any]) -> list[DrawnChart]:
    return [draw(report, spec, result) for spec in CHARTS.get(report, ())]


def key_figures(results: Mapping[str, Mapping[str, Any]]) -> list[KeyFigure]:
    out = []
    for figure in KEY_FIGURES:
        table = table_of(results[figure.report], figure.table)
        values = [r.get(figure.column) for r in (table["rows"] if table else [])]
        numbers = [v for v in values if isinstance(v, int | float)]
        out.append(KeyFigure(figure.caption, figure.report, figure.table, figure.column,
                             sum(numbers) if numbers else (0 if table else None)))
    return out


@dataclass(frozen=True)
class Query:
    """A page's period and options, read from its query string."""

    period: Period
    options: Options
    given: dict[str, str]        # the parameters as given, to carry over in links


def read_query(params: Mapping[str, str], now: datetime) -> Query:
    """The period and options of ``?since=&until=&by=&split=&untouched_days=``; a bad value is
    a ConfigError naming the parameter (the page answers 400 with it)."""
    by = params.get("by") or "week"
    if by not in GRANULARITIES:
        raise ConfigError(f"by '{by}' is not one of {', '.join(GRANULARITIES)}",
                          hint="Use ?by=day, ?by=week or ?by=month.")
    split = params.get("split") or "source"
    if split not in SPLITS:
        raise ConfigError(f"split '{split}' is not one of {', '.join(SPLITS)}",
                          hint="Use ?split=source, ?split=segment or ?split=none.")
    period = default_period(now, by,
                            parse_moment(params.get("since") or None, "since"),
                            parse_moment(params.get("until") or None, "until"))
    if period.since >= period.until:
        raise ConfigError(f"since {period.since.isoformat()} is not before until "
                          f"{period.until.isoformat()}", hint="Give a start before the end.")
    options = Options(now=now, split=split,  # type: ignore[arg-type]
                      untouched_days=_untouched_days(params.get("untouched_days")))
    given = {k: v for k, v in params.items()
             if k in ("since", "until", "by", "split", "untouched_days") and v}
    return Query(period, options, given)


def _untouched_days(text: str | None) -> int:
    if not text:
        return 5
    if not text.strip().isdigit() or int(text) < 1 or int(text) > 3650:
        raise ConfigError(f"untouched_days '{text}' is not a whole number of days from 1 to "
                          "3650", hint="Use e.g. ?untouched_days=5.")
    return int(text)
