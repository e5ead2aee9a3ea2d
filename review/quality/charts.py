"""Server-side SVG charts for the report pages: a line with its interval band, a small
trend line for a table row, a heat map, horizontal bars and columns. Every text goes
through ``format_html``; no script, no external asset. Each chart has a ``<title>`` and
the page shows its table beside it.

Legibility: a chart is drawn at its own size in pixels (``width``/``height``) and only
ever shrinks to fit its column (the page's CSS: ``max-width: 100%``), so its text, 14
units in the stylesheet, stays at 12 px or more on any column the pages give it; text is
the ink or the muted colour on white or on a heat-map cell no darker than
``HEAT_MAX_OPACITY`` of the accent (contrast 5:1 or more)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe


def format_html(template: str, *args: Any) -> SafeString:
    """``django.utils.html.format_html`` that keeps numbers numbers, so the template can
    format them (``{:.1f}``); everything else is escaped."""
    return mark_safe(  # noqa: S308 - every non-number argument is escaped
        template.format(
            *(
                a
                if isinstance(a, int | float) and not isinstance(a, bool)
                else conditional_escape(a)
                for a in args
            )
        )
    )


WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD = 640, 220, 44, 28, 12


def _svg(title: str, body: SafeString, *, width: int = WIDTH, height: int = HEIGHT) -> SafeString:
    return format_html(
        '<svg class="chart" role="img" viewBox="0 0 {} {}" width="{}" height="{}" '
        'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        "<title>{}</title>{}</svg>",
        width,
        height,
        width,
        height,
        title,
        body,
    )


def line_with_band(
    title: str, points: Sequence[tuple[str, float | None, float | None, float | None]]
) -> SafeString:
    """``points``: (label, value, low, high) in time order; a point without a value
    breaks the line, one without an interval has no band there."""
    values = [v for _, v, lo, hi in points for v in (v, lo, hi) if v is not None]
    if not values:
        return _svg(title, format_html('<text x="{}" y="{}">No figure yet.</text>', PAD_LEFT, 40))
    low = min(0.0, min(values))
    high = max(1.0, max(values))
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD, HEIGHT - PAD_BOTTOM - PAD
    n = len(points)

    def x(i: int) -> float:
        return PAD_LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD + plot_h * (high - v) / (high - low)

    band_top = [(x(i), y(hi)) for i, (_, _, lo, hi) in enumerate(points) if hi is not None]
    band_bottom = [(x(i), y(lo)) for i, (_, _, lo, hi) in enumerate(points) if lo is not None]
    parts = []
    for tick in (low, 0.0, 0.5, 0.8, 1.0, high):
        if low <= tick <= high:
            parts.append(
                format_html(
                    '<line class="grid" x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}"/>'
                    '<text class="axis" x="{}" y="{:.1f}" text-anchor="end">{:.1f}</text>',
                    PAD_LEFT,
                    WIDTH - PAD,
                    y(tick),
                    y(tick),
                    PAD_LEFT - 4,
                    y(tick) + 4,
                    tick,
                )
            )
    if len(band_top) >= 2:
        outline = band_top + band_bottom[::-1]
        parts.append(
            format_html(
                '<polygon class="band" points="{}"/>',
                " ".join(f"{px:.1f},{py:.1f}" for px, py in outline),
            )
        )
    segment: list[str] = []
    for i, (_, value, _lo, _hi) in enumerate(points):
        if value is None:
            if len(segment) > 1:
                parts.append(format_html('<polyline class="line" points="{}"/>', " ".join(segment)))
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(value):.1f}")
        parts.append(
            format_html(
                '<circle class="dot" cx="{:.1f}" cy="{:.1f}" r="3">'
                "<title>{}: {:.3f}</title></circle>",
                x(i),
                y(value),
                points[i][0],
                value,
            )
        )
    if len(segment) > 1:
        parts.append(format_html('<polyline class="line" points="{}"/>', " ".join(segment)))
    for i in sorted({0, n - 1}):
        parts.append(
            format_html(
                '<text class="axis" x="{:.1f}" y="{}" text-anchor="{}">{}</text>',
                x(i),
                HEIGHT - 8,
                "start" if i == 0 else "end",
                points[i][0],
            )
        )
    return _svg(title, mark_safe("".join(parts)))  # noqa: S308 - built from format_html parts


TREND_WIDTH, TREND_HEIGHT, TREND_PAD = 240, 56, 5


def trend(
    title: str, points: Sequence[tuple[str, float | None, float | None, float | None]]
) -> SafeString:
    """A table row's small line of (label, value, low, high) in time order, on the scale
    0 to 1 (widened to the values): no text inside, the row says the figures; each dot's
    tooltip its time and value. A point without a value breaks the line."""
    values = [v for _, v, lo, hi in points for v in (v, lo, hi) if v is not None]
    low = min([0.0, *values])
    high = max([1.0, *values])
    plot_w, plot_h = TREND_WIDTH - 2 * TREND_PAD, TREND_HEIGHT - 2 * TREND_PAD
    n = len(points)

    def x(i: int) -> float:
        return TREND_PAD + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TREND_PAD + plot_h * (high - v) / (high - low)

    parts = [
        format_html(
            '<line class="grid" x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}"/>',
            TREND_PAD,
            TREND_WIDTH - TREND_PAD,
            y(tick),
            y(tick),
        )
        for tick in (0.0, 1.0)
    ]
    top = [(x(i), y(hi)) for i, (_, _, _, hi) in enumerate(points) if hi is not None]
    bottom = [(x(i), y(lo)) for i, (_, _, lo, _) in enumerate(points) if lo is not None]
    if len(top) >= 2 and len(bottom) == len(top):
        parts.append(
            format_html(
                '<polygon class="band" points="{}"/>',
                " ".join(f"{px:.1f},{py:.1f}" for px, py in top + bottom[::-1]),
            )
        )
    segment: list[str] = []
    for i, (label, value, _lo, _hi) in enumerate(points):
        if value is None:
            if len(segment) > 1:
                parts.append(format_html('<polyline class="line" points="{}"/>', " ".join(segment)))
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(value):.1f}")
        parts.append(
            format_html(
                '<circle class="dot" cx="{:.1f}" cy="{:.1f}" r="{}"><title>{}: {:.3f}</title>'
                "</circle>",
                x(i),
                y(value),
                3 if i == n - 1 else 2,
                label,
                value,
            )
        )
    if len(segment) > 1:
        parts.append(format_html('<polyline class="line" points="{}"/>', " ".join(segment)))
    svg = _svg(
        title,
        mark_safe("".join(parts)),  # noqa: S308 - built from format_html parts
        width=TREND_WIDTH,
        height=TREND_HEIGHT,
    )
    return mark_safe(svg.replace('class="chart"', 'class="chart trend"', 1))  # noqa: S308


# The darkest a heat-map cell gets: ink text on it keeps a contrast of 5:1.
HEAT_MIN_OPACITY, HEAT_MAX_OPACITY = 0.08, 0.6


def heat_map(
    title: str, rows: Sequence[str], columns: Sequence[str], counts: Sequence[Sequence[int]]
) -> SafeString:
    """A matrix of counts; darker is more."""
    cell, left, top = 110, 150, 40
    width, height = left + cell * len(columns) + PAD, top + cell * len(rows) + PAD
    most = max((c for row in counts for c in row), default=0) or 1
    parts = [
        format_html(
            '<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>',
            left + cell * j + cell / 2,
            top - 10,
            label,
        )
        for j, label in enumerate(columns)
    ]
    for i, label in enumerate(rows):
        parts.append(
            format_html(
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
                left - 8,
                top + cell * i + cell / 2 + 4,
                label,
            )
        )
        for j, count in enumerate(counts[i]):
            share = count / most
            parts.append(
                format_html(
                    '<rect class="cell" x="{}" y="{}" width="{}" height="{}" '
                    'fill-opacity="{:.2f}"><title>{} / {}: {}</title></rect>'
                    '<text class="cell-label" x="{}" y="{}" text-anchor="middle">{}</text>',
                    left + cell * j,
                    top + cell * i,
                    cell - 2,
                    cell - 2,
                    HEAT_MIN_OPACITY + (HEAT_MAX_OPACITY - HEAT_MIN_OPACITY) * share,
                    label,
                    columns[j],
                    count,
                    left + cell * j + cell / 2,
                    top + cell * i + cell / 2 + 5,
                    count,
                )
            )
    return _svg(title, mark_safe("".join(parts)), width=width, height=height)  # noqa: S308


def bars(
    title: str, items: Sequence[tuple[str, float | None]], *, threshold: float | None = None
) -> SafeString:
    """Horizontal bars for shares between 0 and 1 (None: no figure)."""
    row, left = 26, 320
    height = PAD * 2 + row * max(len(items), 1)
    plot_w = WIDTH - left - PAD - 50
    parts = []
    for i, (label, value) in enumerate(items):
        y = PAD + row * i
        parts.append(
            format_html(
                '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
                left - 8,
                y + 16,
                label,
            )
        )
        if value is None:
            parts.append(
                format_html('<text class="axis" x="{}" y="{}">no figure</text>', left, y + 16)
            )
            continue
        parts.append(
            format_html(
                '<rect class="bar" x="{}" y="{}" width="{:.1f}" height="{}">'
                "<title>{}: {:.0%}</title></rect>"
                '<text class="axis" x="{:.1f}" y="{}">{:.0%}</text>',
                left,
                y + 4,
                plot_w * max(0.0, min(1.0, value)),
                row - 8,
                label,
                value,
                left + plot_w * max(0.0, min(1.0, value)) + 6,
                y + 16,
                value,
            )
        )
    if threshold is not None:
        tx = left + plot_w * threshold
        parts.append(
            format_html(
                '<line class="threshold" x1="{:.1f}" x2="{:.1f}" y1="{}" y2="{}"/>',
                tx,
                tx,
                PAD - 4,
                height - PAD + 4,
            )
        )
    return _svg(title, mark_safe("".join(parts)), height=height)  # noqa: S308


def columns(title: str, items: Sequence[tuple[str, int]]) -> SafeString:
    """Vertical columns of counts (e.g. answers per hour)."""
    most = max((v for _, v in items), default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD, HEIGHT - PAD_BOTTOM - PAD
    width = plot_w / max(len(items), 1)
    parts = [
        format_html(
            '<text class="axis" x="{}" y="{}" text-anchor="end">{}</text>',
            PAD_LEFT - 4,
            PAD + 4,
            most,
        ),
        format_html(
            '<text class="axis" x="{}" y="{}" text-anchor="end">0</text>',
            PAD_LEFT - 4,
            PAD + plot_h,
        ),
    ]
    for i, (label, value) in enumerate(items):
        h = plot_h * value / most
        parts.append(
            format_html(
                '<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}">'
                "<title>{}: {}</title></rect>",
                PAD_LEFT + width * i + 1,
                PAD + plot_h - h,
                max(width - 2, 1),
                h,
                label,
                value,
            )
        )
    labels = [(0, items[0][0]), (len(items) - 1, items[-1][0])] if items else []
    parts.extend(
        format_html(
            '<text class="axis" x="{:.1f}" y="{}" text-anchor="middle">{}</text>',
            PAD_LEFT + width * i + width / 2,
            HEIGHT - 8,
            label,
        )
        for i, label in labels
    )
    return _svg(title, mark_safe("".join(parts)))  # noqa: S308
