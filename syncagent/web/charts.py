"""Bar and line charts as inline SVG, drawn on the server: a page needs no script, no font and
no file from any network to show them.

Every mark (a bar, a point) carries ``data-label``, ``data-series`` and ``data-value`` with the
figure it draws, so a test, or a reader with the browser's inspector, can trace it back to the
report's JSON. Text from the data (rep and campaign names) is escaped: it comes from the CRM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 28, 44
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0891b2", "#db2777",
           "#65a30d")
LABEL_CHARS = 14
CHAR_WIDTH = 6.5           # of an 11 px sans-serif character, roughly, to keep labels apart

Series = dict[str, list[float | None]]


@dataclass(frozen=True)
class _Frame:
    """The plot area and its value scale (0 at the bottom, ``top_value`` at the top)."""

    top_value: float

    @property
    def width(self) -> float:
        return WIDTH - LEFT - RIGHT

    @property
    def height(self) -> float:
        return HEIGHT - TOP - BOTTOM

    def y(self, value: float) -> float:
        return TOP + self.height * (1 - value / self.top_value)


def has_data(series: Series) -> bool:
    """Whether a chart would show anything (all zero or missing reads as "no data")."""
    return any(v for values in series.values() for v in values if v is not None)


def bar_chart(title: str, labels: Sequence[str], series: Series,
              categories: bool = False) -> Markup:
    """Grouped bars: one group per label, one bar per series. Category labels (sources,
    reps) are all shown, cut to their slot; time labels are thinned out instead."""
    frame = _Frame(_nice_top(series))
    slot = frame.width / max(1, len(labels))
    bar = slot * 0.8 / max(1, len(series))
    marks = []
    for s_index, (name, values) in enumerate(series.items()):
        for l_index, value in enumerate(values):
            if value is None:
                continue
            x = LEFT + l_index * slot + slot * 0.1 + s_index * bar
            y = frame.y(max(value, 0))
            marks.append(
                f'<rect class="mark bar" x="{x:.1f}" y="{y:.1f}" width="{max(bar - 1, 1):.1f}" '
                f'height="{TOP + frame.height - y:.1f}" fill="{_colour(s_index)}"'
                f'{_data(labels[l_index], name, value)}>{_tip(labels[l_index], name, value)}'
                "</rect>")
    return _svg(title, frame, labels, list(series), marks, categories)


def line_chart(title: str, labels: Sequence[str], series: Series) -> Markup:
    """One line per series over the labels (time buckets, in order), a dot on each value."""
    frame = _Frame(_nice_top(series))
    step = frame.width / max(1, len(labels))
    marks = []
    for s_index, (name, values) in enumerate(series.items()):
        points = [(LEFT + step * (i + 0.5), frame.y(max(v, 0)), labels[i], v)
                  for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
            marks.append(f'<polyline class="line" points="{path}" fill="none" '
                         f'stroke="{_colour(s_index)}" stroke-width="2"/>')
        marks += [f'<circle class="mark point" cx="{x:.1f}" cy="{y:.1f}" r="3" '
                  f'fill="{_colour(s_index)}"{_data(label, name, v)}>{_tip(label, name, v)}'
                  "</circle>" for x, y, label, v in points]
    return _svg(title, frame, labels, list(series), marks)


def _svg(title: str, frame: _Frame, labels: Sequence[str], names: list[str],
         marks: list[str], categories: bool = False) -> Markup:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} '
             f'{HEIGHT}" role="img" aria-label="{escape(title)}" data-chart="{escape(title)}">',
             *_y_axis(frame), *_x_labels(frame, labels, categories), *marks,
             *_legend(names), "</svg>"]
    return Markup("\n".join(parts))


def _y_axis(frame: _Frame) -> list[str]:
    out = []
    for tick in range(5):
        value = frame.top_value * tick / 4
        y = frame.y(value)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                   f'y2="{y:.1f}" stroke="#e5e7eb"/>')
        out.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" '
                   f'font-size="11" fill="#6b7280">{_number(value)}</text>')
    return out


def _x_labels(frame: _Frame, labels: Sequence[str], categories: bool) -> list[str]:
    if not labels:
        return []
    slot = frame.width / len(labels)
    if categories:  # every label, cut to the width of its slot
        every, chars = 1, max(3, min(LABEL_CHARS, int((slot - 4) // CHAR_WIDTH)))
    else:           # every n-th label, whole
        widest = max(len(_short(label)) for label in labels) * CHAR_WIDTH + 10
        every, chars = math.ceil(len(labels) / max(1, int(frame.width // widest))), LABEL_CHARS
    return [f'<text class="x-label" x="{LEFT + slot * (i + 0.5):.1f}" y="{HEIGHT - BOTTOM + 16}"'
            f' text-anchor="middle" font-size="11" fill="#374151">'
            f"{escape(_short(label, chars))}</text>"
            for i, label in enumerate(labels) if i % every == 0]


def _legend(names: list[str]) -> list[str]:
    out, x = [], LEFT
    for index, name in enumerate(names):
        out.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{_colour(index)}"/>')
        out.append(f'<text class="legend" x="{x + 14}" y="17" font-size="11" fill="#111827">'
                   f"{escape(name)}</text>")
        x += 24 + 7 * len(name)
    return out


def _nice_top(series: Series) -> float:
    """The axis' top: the largest value rounded up so that its four ticks are round."""
    values = [v for vs in series.values() for v in vs if v is not None]
    largest = max(values, default=0.0)
    if largest <= 0:
        return 1.0
    if largest <= 12 and all(float(v).is_integer() for v in values):
        return float(4 * math.ceil(largest / 4))  # small counts: ticks at whole numbers
    power = 10 ** math.floor(math.log10(largest))
    return next(step * power for step in (1, 1.2, 1.6, 2, 2.4, 3, 4, 6, 8, 10)
                if step * power >= largest)


def _data(label: str, series: str, value: float) -> str:
    return (f' data-label="{escape(label)}" data-series="{escape(series)}" '
            f'data-value="{_number(value)}"')


def _tip(label: str, series: str, value: float) -> str:
    return f"<title>{escape(label)} · {escape(series)}: {_number(value)}</title>"


def _number(value: float) -> str:
    """A figure as it is shown and stored in data-value: integers without a point."""
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _short(label: str, chars: int = LABEL_CHARS) -> str:
    return label if len(label) <= chars else label[:chars - 1] + "…"


def _colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]
