"""A self-contained HTML page: inline CSS and SVG charts, no script, no external file.

Pure functions from plain Python values to HTML text, so the page opens from a mail attachment
or a file share and renders the same anywhere. Every text that comes from data is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from html import escape
from typing import Any

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

CSS = """
body { font-family: -apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC",
       Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 32px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #666; font-size: 13px; }
.note { color: #666; font-size: 13px; font-style: italic; }
table { border-collapse: collapse; font-size: 13px; margin-top: 8px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f5f5f5; }
.bad { color: #b00020; font-weight: bold; }
.good { color: #2e7d32; }
svg text { font-size: 11px; fill: #333; }
.legend span { display: inline-block; margin-right: 14px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
"""


@dataclass
class Section:
    title: str
    body: str


@dataclass
class Page:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)

    def render(self) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="zh-CN"><head><meta charset="utf-8">',
            f"<title>{escape(self.title)}</title>",
            f"<style>{CSS}</style></head><body>",
            f"<h1>{escape(self.title)}</h1>",
            f'<p class="meta">{escape(self.subtitle)}</p>',
        ]
        for i, section in enumerate(self.sections):
            parts.append(f'<section id="s{i}"><h2>{escape(section.title)}</h2>{section.body}')
            parts.append("</section>")
        parts.append("</body></html>")
        return "\n".join(parts)


def number(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (float, Decimal)):
        return f"{float(value):,.{digits}f}"
    return escape(str(value))


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    headers: Sequence[str] | None = None,
    css: Mapping[str, Any] | None = None,
) -> str:
    """An HTML table of `rows`; numbers right-aligned. `css` maps a column to a function of the
    row returning a class name (e.g. 'bad' for a failed status)."""
    if not rows:
        return note("No rows.")
    head = "".join(f"<th>{escape(h)}</th>" for h in (headers or columns))
    body = []
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            classes = []
            if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
                classes.append("num")
            if css and column in css:
                extra = css[column](row)
                if extra:
                    classes.append(extra)
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{number(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _legend(names: Sequence[str]) -> str:
    items = "".join(
        f'<span><i style="background:{PALETTE[i % len(PALETTE)]}"></i>{escape(n)}</span>'
        for i, n in enumerate(names)
    )
    return f'<div class="legend">{items}</div>'


def _scale(low: float, high: float, out_low: float, out_high: float):
    span = (high - low) or 1.0

    def f(v: float) -> float:
        return out_low + (v - low) / span * (out_high - out_low)

    return f


def line_chart(
    series: Mapping[str, Sequence[tuple[date, float]]],
    *,
    width: int = 900,
    height: int = 260,
    label: str = "",
) -> str:
    """One line per series over dates (a point per day), with a y axis that includes 0.

    A day's net sales can be negative (returns above sales): the axis reaches down to it.
    """
    points = [p for values in series.values() for p in values]
    if not points:
        return note("No data for this chart.")
    days = sorted({d for d, _ in points})
    top = max(max(float(v) for _, v in points), 0.0)
    bottom = min(min(float(v) for _, v in points), 0.0)
    left, right, upper, lower = 70, width - 10, 10, height - 30
    x_of = {d: left + (i / max(len(days) - 1, 1)) * (right - left) for i, d in enumerate(days)}
    y = _scale(bottom, top, lower, upper)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}">'
    ]
    for k in range(5):
        value = bottom + (top - bottom) * k / 4
        yy = y(value)
        out.append(f'<line x1="{left}" x2="{right}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{value:,.0f}</text>')
    step = max(1, len(days) // 10)
    for i, d in enumerate(days):
        if i % step == 0 or i == len(days) - 1:
            out.append(
                f'<text x="{x_of[d]:.1f}" y="{height - 10}" text-anchor="middle">'
                f"{d.isoformat()[5:]}</text>"
            )
    for i, (name, values) in enumerate(series.items()):
        color = PALETTE[i % len(PALETTE)]
        ordered = sorted(values)
        path = " ".join(f"{x_of[d]:.1f},{y(float(v)):.1f}" for d, v in ordered)
        out.append(
            f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2" '
            f'points="{path}"><title>{escape(name)}</title></polyline>'
        )
        for d, v in ordered:
            out.append(
                f'<circle cx="{x_of[d]:.1f}" cy="{y(float(v)):.1f}" r="2.5" fill="{color}">'
                f"<title>{escape(name)} {d}: {float(v):,.2f}</title></circle>"
            )
    out.append("</svg>")
    return _legend(list(series)) + "".join(out)


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    width: int = 900,
    bar_height: int = 18,
    label: str = "",
    unit: str = "",
) -> str:
    """Horizontal bars, one per (label, value), in the given order; negative values go left."""
    if not bars:
        return note("No data for this chart.")
    values = [float(v) for _, v in bars]
    low, high = min(0.0, *values), max(0.0, *values)
    left, right = 220, width - 90
    x = _scale(low, high, left, right)
    height = len(bars) * (bar_height + 6) + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(label)}">'
    ]
    zero = x(0.0)
    for i, (name, value) in enumerate(bars):
        top = 5 + i * (bar_height + 6)
        start, end = sorted((zero, x(float(value))))
        color = PALETTE[0] if float(value) >= 0 else PALETTE[3]
        out.append(
            f'<text x="{left - 6}" y="{top + bar_height - 5}" text-anchor="end">'
            f"{escape(str(name)[:32])}</text>"
        )
        out.append(
            f'<rect class="bar" x="{start:.1f}" y="{top}" width="{max(end - start, 0.5):.1f}" '
            f'height="{bar_height}" fill="{color}"><title>{escape(str(name))}: '
            f"{float(value):,.2f}{escape(unit)}</title></rect>"
        )
        out.append(
            f'<text x="{end + 4:.1f}" y="{top + bar_height - 5}">{float(value):,.2f}'
            f"{escape(unit)}</text>"
        )
    out.append("</svg>")
    return "".join(out)
