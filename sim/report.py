"""HTML reports that open from disk: ``report.html`` beside an eval's ``results.json`` or a sweep's table.

:func:`write_report` takes what ``manip eval`` writes (the contract's ``results.json`` dict) and writes the success
rate with its 95% interval, one row per episode (seed, success, steps; linked to its video in ``videos/`` when
there is one) and a histogram of the policy's latency per chunk request (``latencies_ms``, when given; else the
recorded p50/p99). Given a sweep's rows (``sweep.cell_row`` dicts) it writes the sweep's table with a bar per
cell. Plots are inline SVG (:mod:`manip.data.view.svg`); nothing is fetched from the network.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from manip.data.view.html import escape, link, table, video, write_page
from manip.data.view.svg import bar_chart, histogram

REPORT = "report.html"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def episode_videos(out_dir: Path) -> dict[int, str]:
    """Episode index → its video's path relative to ``out_dir`` (``videos/episode_NNN_*.mp4``)."""
    found = {}
    for path in sorted((out_dir / "videos").glob("episode_*.mp4")):
        number = path.stem.split("_")[1]
        if number.isdigit():
            found[int(number)] = path.relative_to(out_dir).as_posix()
    return found


def eval_report_body(out_dir: Path, results: dict, latencies_ms: Sequence[float] | None = None) -> str:
    """The HTML body of an eval's report."""
    low, high = results.get("ci95") or (None, None)
    parts = [
        f"<p><b>{escape(results.get('task', ''))}</b>: {results.get('successes', 0)}/{results.get('episodes', 0)} "
        f"successes, success rate <b>{_percent(results.get('success_rate'))}</b> "
        f"(95% Wilson interval {_percent(low)} – {_percent(high)})</p>",
        f'<p class="note">source {escape(results.get("source", ""))}; checkpoint '
        f"{escape(results.get('checkpoint_id'))}; commit {escape(results.get('git_commit', ''))}</p>",
    ]
    videos = episode_videos(out_dir)
    rows, classes = [], []
    for i, episode in enumerate(results.get("per_episode", [])):
        success = bool(episode.get("success"))
        rows.append(
            [
                str(i),
                str(episode.get("seed", "")),
                "yes" if success else "no",
                str(episode.get("steps", "")),
                f'<span class="text">{escape(episode.get("error", ""))}</span>',
                link(videos[i], "video") if i in videos else "",
            ]
        )
        classes.append("ok" if success else "fail")
    parts.append(table(["episode", "seed", "success", "steps", "error", "video"], rows, classes))
    latency = results.get("latency_ms") or {}
    if latencies_ms is not None and len(latencies_ms):
        parts.append(histogram("policy latency per chunk request", list(latencies_ms), x_label="ms"))
    parts.append(
        f'<p class="note">latency per chunk request: p50 {latency.get("p50", "–")} ms, p99 {latency.get("p99", "–")} ms</p>'
    )
    if videos:
        parts.append(
            "<h2>Videos</h2>" + "".join(video(src, f"episode {i}") for i, src in sorted(videos.items()))
        )
    return "\n".join(parts)


def sweep_report_body(out_dir: Path, rows: Sequence[dict]) -> str:
    """The HTML body of a sweep's report: its table and a bar chart of success per cell."""
    labels = [
        f"{r.get('task', '')} {r.get('policy', '')} {r.get('setting', '')} s{r.get('seed', '')}" for r in rows
    ]
    chart = bar_chart(
        "success rate per cell (95% interval)",
        labels,
        [r.get("success_rate") for r in rows],
        [(r.get("ci_low"), r.get("ci_high")) for r in rows],
    )
    cells = []
    for r in rows:
        name = str(r.get("cell", ""))
        cells.append(
            [
                link(f"cells/{name}/{REPORT}", name)
                if (out_dir / "cells" / name / REPORT).is_file()
                else escape(name),
                f'<span class="text">{escape(r.get("task", ""))}</span>',
                f'<span class="text">{escape(r.get("policy", ""))}</span>',
                f'<span class="text">{escape(r.get("setting", ""))}</span>',
                str(r.get("seed", "")),
                _percent(r.get("success_rate")),
                f"{_percent(r.get('ci_low'))} – {_percent(r.get('ci_high'))}",
                f'<span class="text">{escape(r.get("error", ""))}</span>',
            ]
        )
    headers = ["cell", "task", "policy", "setting", "seed", "success", "95% interval", "error"]
    classes = ["fail" if r.get("error") else "" for r in rows]
    return chart + "\n" + table(headers, cells, classes)


def write_report(
    out_dir: str | Path, results: dict | Sequence[dict], latencies_ms: Sequence[float] | None = None
) -> Path:
    """Write ``out_dir/report.html``: an eval's report for a ``results.json`` dict, a sweep's for a list of its
    rows; return its path. ``latencies_ms`` (an eval's per-request policy times) draws the latency histogram."""
    out_dir = Path(out_dir)
    if isinstance(results, dict):
        title = f"Evaluation: {results.get('task', '')}"
        body = eval_report_body(out_dir, results, latencies_ms)
    else:
        title = "Sweep"
        body = sweep_report_body(out_dir, list(results))
    return write_page(out_dir / REPORT, title, body)
