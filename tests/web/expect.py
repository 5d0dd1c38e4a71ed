"""What a dashboard page must show, worked out from a report's JSON independently of the
page code: each table cell's text, each chart mark's value, each key figure."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

MAX_ROWS = 500
MAX_LABELS = 20
MAX_TIME_LABELS = 400


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def expected_tables(result: dict[str, Any]) -> dict[str, list[list[str]]]:
    """title -> the rows drawn (at most MAX_ROWS), each a list of cell texts."""
    return {t["title"]: [[cell(row[c]) for c in t["columns"]] for row in t["rows"][:MAX_ROWS]]
            for t in result["tables"] if t["rows"]}


def expected_marks(result: dict[str, Any], table: str, label: str, columns: tuple[str, ...],
                   pivot: str | None = None, over_time: bool = False
                   ) -> dict[tuple[str, str], float]:
    """(series, label) -> the sum of the column over the table's rows with that label (the
    first MAX_LABELS categories, the last MAX_TIME_LABELS buckets; a missing value draws no
    mark)."""
    rows = next(t["rows"] for t in result["tables"] if t["title"] == table)
    labels = list(dict.fromkeys(str(r[label]) for r in rows))
    labels = labels[-MAX_TIME_LABELS:] if over_time else labels[:MAX_LABELS]
    sums: dict[tuple[str, str], float] = {}
    for row in rows:
        if str(row[label]) not in labels:
            continue
        for column in columns:
            series = str(row[pivot]) if pivot else column
            if isinstance(row[column], int | float):
                key = (series, str(row[label]))
                sums[key] = sums.get(key, 0) + row[column]
    return sums


def column_sum(result: dict[str, Any], table: str, column: str) -> float:
    rows = next(t["rows"] for t in result["tables"] if t["title"] == table)
    return sum(r[column] for r in rows if isinstance(r[column], int | float))


class Page(HTMLParser):
    """The figures of a dashboard page as its HTML holds them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.marks: list[dict[str, str]] = []      # each with its chart's title as "chart"
        self.figures: list[dict[str, str]] = []    # attributes + "text"
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._chart = ""
        self._figure: dict[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "table" and "data-table" in found:
            self._table = self.tables.setdefault(found["data-table"], [])
        elif tag == "tr" and self._table is not None and "data-row" in found:
            self._table.append([])
        elif tag == "td" and self._table is not None:
            self._cell = []
        elif tag == "svg":
            self._chart = found.get("data-chart", "")
        elif "mark" in found.get("class", "").split():
            self.marks.append({**found, "chart": self._chart})
        elif "key-figure" in found.get("class", "").split():
            self._figure = {**found, "text": ""}

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "dd" and self._figure is not None:
            self._figure["text"] = self._figure["text"].strip()
            self.figures.append(self._figure)
            self._figure = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self._figure is not None:
            self._figure["text"] += data
