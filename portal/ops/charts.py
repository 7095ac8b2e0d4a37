"""Server-rendered SVG charts for the ops console.

Charts are plain SVG with classes (coloured by static/css/ops.css, so the strict
content security policy holds) and are readable without colour: bars and lines
differ in shape and dash pattern, every series is named in a text legend, every
bar has a ``<title>`` tooltip, and each chart comes with a data table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 36


@dataclass(frozen=True, slots=True)
class ForecastHour:
    """One hour of a forecast: releases, forecast contacts, support capacity."""

    start: datetime
    releases: int
    contacts: float
    capacity: float
    open: bool = True


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def forecast_chart(hours: Sequence[ForecastHour], *, title: str, releases_label: str,
                   contacts_label: str, capacity_label: str, hour_format: str = "%a %H:%M"
                   ) -> Markup:
    """Releases per hour (bars, left axis) with forecast contacts and capacity (lines).

    Contacts and capacity share the right axis, so "the forecast stays under the
    capacity line" can be read off the picture.
    """
    if not hours:
        return Markup("")
    plot_w, plot_h = WIDTH - LEFT - RIGHT - 40, HEIGHT - TOP - BOTTOM
    max_releases = _nice_max(max(h.releases for h in hours))
    max_contacts = _nice_max(max(max(h.contacts for h in hours), max(h.capacity for h in hours)))
    step = plot_w / len(hours)
    bar_w = max(step * 0.7, 1.0)

    def y_of(value: float, top: float) -> float:
        return TOP + plot_h - (value / top) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} '
             f'{HEIGHT}" role="img" aria-labelledby="chart-title">',
             f'<title id="chart-title">{escape(title)}</title>']
    # Closed hours (outside the send window) are shaded and hatched.
    for index, hour in enumerate(hours):
        if not hour.open:
            parts.append(f'<rect class="closed" x="{LEFT + index * step:.1f}" y="{TOP}" '
                         f'width="{step:.1f}" height="{plot_h}"/>')
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{_number(max_releases * fraction)}</text>')
        parts.append(f'<text class="axis" x="{LEFT + plot_w + 4}" y="{y + 4:.1f}">'
                     f'{_number(max_contacts * fraction)}</text>')
    for index, hour in enumerate(hours):
        if hour.releases:
            y = y_of(hour.releases, max_releases)
            label = escape(f"{hour.start.strftime(hour_format)}: {hour.releases:,} "
                           f"{releases_label}, {hour.contacts:.1f} {contacts_label}")
            parts.append(f'<rect class="bar" x="{LEFT + index * step + (step - bar_w) / 2:.1f}" '
                         f'y="{y:.1f}" width="{bar_w:.1f}" height="{TOP + plot_h - y:.1f}">'
                         f'<title>{label}</title></rect>')

    def polyline(values: Sequence[float], css: str) -> str:
        points = " ".join(f"{LEFT + (i + 0.5) * step:.1f},{y_of(v, max_contacts):.1f}"
                          for i, v in enumerate(values))
        return f'<polyline class="{css}" points="{points}"/>'

    parts.append(polyline([h.capacity for h in hours], "capacity"))
    parts.append(polyline([h.contacts for h in hours], "contacts"))
    labels = max(1, len(hours) // 6)
    for index in range(0, len(hours), labels):
        parts.append(f'<text class="axis" x="{LEFT + index * step:.1f}" y="{HEIGHT - 18}">'
                     f'{escape(hours[index].start.strftime(hour_format))}</text>')
    legend_y = HEIGHT - 4
    parts.append(f'<rect class="bar" x="{LEFT}" y="{legend_y - 9}" width="10" height="10"/>'
                 f'<text class="legend" x="{LEFT + 14}" y="{legend_y}">'
                 f'{escape(releases_label)}</text>')
    parts.append(f'<line class="contacts" x1="{LEFT + 230}" x2="{LEFT + 255}" '
                 f'y1="{legend_y - 4}" y2="{legend_y - 4}"/>'
                 f'<text class="legend" x="{LEFT + 260}" y="{legend_y}">'
                 f'{escape(contacts_label)}</text>')
    parts.append(f'<line class="capacity" x1="{LEFT + 460}" x2="{LEFT + 485}" '
                 f'y1="{legend_y - 4}" y2="{legend_y - 4}"/>'
                 f'<text class="legend" x="{LEFT + 490}" y="{legend_y}">'
                 f'{escape(capacity_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above went through escape)


def rate_chart(points: Sequence[tuple[datetime, int]], *, planned_per_bucket: float | None,
               title: str, actual_label: str, planned_label: str,
               time_format: str = "%H:%M") -> Markup:
    """Deliveries sent per time bucket (bars) against the planned rate (dashed line)."""
    if not points:
        return Markup("")
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_max(max(max(count for _, count in points), planned_per_bucket or 0))
    step = plot_w / len(points)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} '
             f'{HEIGHT}" role="img" aria-labelledby="rate-title">',
             f'<title id="rate-title">{escape(title)}</title>']
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_number(top * fraction)}</text>')
    for index, (at, count) in enumerate(points):
        height = count / top * plot_h
        parts.append(f'<rect class="bar" x="{LEFT + index * step + step * 0.15:.1f}" '
                     f'y="{TOP + plot_h - height:.1f}" width="{max(step * 0.7, 1):.1f}" '
                     f'height="{height:.1f}"><title>{escape(at.strftime(time_format))}: '
                     f'{count:,} {escape(actual_label)}</title></rect>')
    if planned_per_bucket:
        y = TOP + plot_h - planned_per_bucket / top * plot_h
        parts.append(f'<line class="capacity" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
    labels = max(1, len(points) // 6)
    for index in range(0, len(points), labels):
        parts.append(f'<text class="axis" x="{LEFT + index * step:.1f}" y="{HEIGHT - 18}">'
                     f'{escape(points[index][0].strftime(time_format))}</text>')
    legend_y = HEIGHT - 4
    parts.append(f'<rect class="bar" x="{LEFT}" y="{legend_y - 9}" width="10" height="10"/>'
                 f'<text class="legend" x="{LEFT + 14}" y="{legend_y}">'
                 f'{escape(actual_label)}</text>')
    if planned_per_bucket:
        parts.append(f'<line class="capacity" x1="{LEFT + 260}" x2="{LEFT + 285}" '
                     f'y1="{legend_y - 4}" y2="{legend_y - 4}"/><text class="legend" '
                     f'x="{LEFT + 290}" y="{legend_y}">{escape(planned_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above went through escape)


def funnel_chart(stages: Sequence[tuple[str, int]], *, title: str) -> Markup:
    """Horizontal bars, one per stage (planned, sent, delivered, viewed, paid), labelled."""
    if not stages:
        return Markup("")
    top = max(max(count for _, count in stages), 1)
    row = 30
    height = TOP + row * len(stages) + 8
    label_w = 150
    plot_w = WIDTH - label_w - 90
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} '
             f'{height}" role="img" aria-labelledby="funnel-title">',
             f'<title id="funnel-title">{escape(title)}</title>']
    for index, (name, count) in enumerate(stages):
        y = TOP + index * row
        width = count / top * plot_w
        share = f"{count / top:.0%}" if top else ""
        parts.append(f'<text class="legend" x="{label_w - 8}" y="{y + 17}" text-anchor="end">'
                     f'{escape(name)}</text>'
                     f'<rect class="bar funnel-{index}" x="{label_w}" y="{y + 4}" '
                     f'width="{max(width, 1):.1f}" height="{row - 10}">'
                     f'<title>{escape(name)}: {count:,}</title></rect>'
                     f'<text class="axis" x="{label_w + width + 6:.1f}" y="{y + 17}">'
                     f'{count:,} ({share})</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every text above went through escape)
