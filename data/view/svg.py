"""Inline SVG plots (no plotting library, no scripts): lines over time with shaded spans, and histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from manip.data.view.html import escape

COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
WIDTH, HEIGHT, MARGIN = 420, 180, 36


def _scale(values: np.ndarray, low: float, high: float, start: float, stop: float) -> np.ndarray:
    span = high - low if high > low else 1.0
    return start + (values - low) / span * (stop - start)


def _frame(title: str, low: float, high: float, x_label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img"><title>{escape(title)}</title>',
        f'<rect x="{MARGIN}" y="8" width="{WIDTH - MARGIN - 8}" height="{HEIGHT - MARGIN - 8}" fill="none" stroke="#999"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 6}" font-size="11" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="4" y="16" font-size="10">{high:.3g}</text>',
        f'<text x="4" y="{HEIGHT - MARGIN}" font-size="10">{low:.3g}</text>',
    ]


def line_plot(
    title: str,
    series: Mapping[str, np.ndarray],
    spans: Sequence[tuple[int, int]] = (),
    x_label: str = "step",
) -> str:
    """One line per entry of ``series`` (each (T,)) over steps 0..T-1, with ``spans`` [start, stop) shaded."""
    lines = [np.asarray(v, dtype=np.float64).reshape(-1) for v in series.values()]
    length = max((len(v) for v in lines), default=1)
    finite = np.concatenate([v[np.isfinite(v)] for v in lines]) if lines else np.zeros(1)
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    left, right, top, bottom = MARGIN, WIDTH - 8, 8, HEIGHT - MARGIN
    parts = _frame(title, low, high, x_label)
    for start, stop in spans:
        x0, x1 = _scale(np.array([start, stop], float), 0, max(length - 1, 1), left, right)
        parts.append(
            f'<rect class="span" x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" height="{bottom - top}" '
            'fill="#ffcc00" fill-opacity="0.3"/>'
        )
    for i, (name, values) in enumerate(zip(series, lines, strict=True)):
        xs = _scale(np.arange(len(values), dtype=float), 0, max(length - 1, 1), left, right)
        ys = _scale(values, low, high, bottom, top)
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True) if np.isfinite(y))
        color = COLORS[i % len(COLORS)]
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{points}"><title>{escape(name)}</title></polyline>'
        )
    legend = " ".join(
        f'<tspan fill="{COLORS[i % len(COLORS)]}">{escape(name)}</tspan>'
        for i, name in enumerate(list(series)[:10])
    )
    parts.append(f'<text x="{left}" y="{HEIGHT - 20}" font-size="10">{legend}</text></svg>')
    return "".join(parts)


def histogram(title: str, values: Sequence[float], bins: int = 20, x_label: str = "") -> str:
    """A histogram of ``values`` in ``bins`` equal bins."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        values = np.zeros(1)
    counts, edges = np.histogram(values, bins=bins)
    parts = _frame(title, 0, float(counts.max()), x_label)
    left, right, top, bottom = MARGIN, WIDTH - 8, 8, HEIGHT - MARGIN
    width = (right - left) / len(counts)
    for i, count in enumerate(counts):
        height = (bottom - top) * count / max(counts.max(), 1)
        parts.append(
            f'<rect class="bar" x="{left + i * width:.1f}" y="{bottom - height:.1f}" width="{max(width - 1, 1):.1f}" '
            f'height="{height:.1f}" fill="#1f77b4"><title>{edges[i]:.3g}–{edges[i + 1]:.3g}: {count}</title></rect>'
        )
    parts.append(f'<text x="{left}" y="{HEIGHT - 20}" font-size="10">{edges[0]:.3g}</text>')
    parts.append(
        f'<text x="{right}" y="{HEIGHT - 20}" font-size="10" text-anchor="end">{edges[-1]:.3g}</text></svg>'
    )
    return "".join(parts)


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    intervals: Sequence[tuple[float, float]] | None = None,
    high: float = 1.0,
) -> str:
    """Vertical bars of ``values`` (0..``high``) named by ``labels``, with ``intervals`` as whiskers."""
    width = max(WIDTH, 60 * len(values) + MARGIN)
    left, right, top, bottom = MARGIN, width - 8, 8, HEIGHT - MARGIN
    parts = _frame(title, 0.0, high, "")
    parts[0] = (
        parts[0].replace(f'width="{WIDTH}"', f'width="{width}"').replace(f"0 0 {WIDTH}", f"0 0 {width}")
    )
    slot = (right - left) / max(len(values), 1)
    for i, value in enumerate(values):
        x = left + i * slot
        if value is not None and np.isfinite(value):
            y = _scale(np.array([value]), 0, high, bottom, top)[0]
            parts.append(
                f'<rect class="bar" x="{x + slot * 0.15:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{bottom - y:.1f}" fill="#1f77b4"><title>{escape(labels[i])}: {value:.3g}</title></rect>'
            )
        if intervals and intervals[i] is not None and None not in intervals[i]:
            y0, y1 = _scale(np.array(intervals[i], float), 0, high, bottom, top)
            cx = x + slot / 2
            parts.append(f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y0:.1f}" y2="{y1:.1f}" stroke="#000"/>')
        parts.append(
            f'<text x="{x + slot / 2:.1f}" y="{bottom + 12}" font-size="9" text-anchor="middle">{escape(labels[i][:14])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
