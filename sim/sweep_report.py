"""A sweep's reports: the per-cell table, seeds pooled per setting, and the success-vs-delay view.

``summary.csv`` (one row per cell), ``summary.md`` (the cell table, then task × policy × setting with the seeds
pooled: Wilson CI95 over all their episodes) and ``summary.png`` (a bar per setting, seeds pooled). When a setting
injects delay, also ``delay.md`` (executor mode × delay) and ``delay.png`` (success vs delay, a line per mode).
Failed cells show their error and are left out of the pooled figures.
"""

from __future__ import annotations

import csv
from pathlib import Path

from manip.sim.stats import wilson_interval

COLUMNS = [
    "cell", "task", "policy", "checkpoint_id", "seed", "setting", "executor", "delay_ms", "jitter_ms", "episodes",
    "successes", "success_rate", "ci_low", "ci_high", "held_fraction", "errors", "error",
]  # fmt: skip
DEFAULT_MODE = "receding"


def pool_seeds(rows: list[dict]) -> list[dict]:
    """One group per (task, policy, setting), in table order: the seeds' episodes pooled, Wilson CI95."""
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (r["task"], r["policy"], r["setting"])
        group = groups.setdefault(
            key,
            {
                "task": r["task"], "policy": r["policy"], "setting": r["setting"],
                "mode": r["executor"] or DEFAULT_MODE, "delay_ms": r["delay_ms"], "jitter_ms": r["jitter_ms"],
                "seeds": [], "episodes": 0, "successes": 0, "held_ticks": 0.0, "failed": 0,
            },
        )  # fmt: skip
        if r["error"]:
            group["failed"] += 1
            continue
        group["seeds"].append(r["seed"])
        group["episodes"] += r["episodes"]
        group["successes"] += r["successes"]
        group["held_ticks"] += (r["held_fraction"] or 0.0) * r["episodes"]
    for group in groups.values():
        n = group["episodes"]
        group["success_rate"] = group["successes"] / n if n else None
        group["ci_low"], group["ci_high"] = wilson_interval(group["successes"], n) if n else (None, None)
        group["held_fraction"] = group.pop("held_ticks") / n if n else None
    return list(groups.values())


def _rate(successes: int, episodes: int, low: float, high: float) -> str:
    return f"{successes}/{episodes} ({100 * low:.0f}–{100 * high:.0f} %)"


def cell_table(rows: list[dict]) -> str:
    """Markdown: one row per cell; a failed cell shows its error instead of numbers."""
    lines = ["| task | policy | seed | setting | success | CI95 | error |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["error"]:
            success, ci = "—", "—"
        else:
            success = f"{r['successes']}/{r['episodes']} ({100 * r['success_rate']:.0f} %)"
            ci = f"{100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f} %"
        error = r["error"].replace("|", "/")
        lines.append(
            f"| {r['task']} | {r['policy']} | {r['seed']} | {r['setting']} | {success} | {ci} | {error} |"
        )
    return "\n".join(lines)


def pooled_table(groups: list[dict]) -> str:
    """Markdown: one row per (task, policy, setting) with the seeds pooled."""
    lines = [
        "| task | policy | setting | seeds | success (CI95) | failed cells |",
        "|---|---|---|---|---|---:|",
    ]
    for g in groups:
        rate = _rate(g["successes"], g["episodes"], g["ci_low"], g["ci_high"]) if g["episodes"] else "—"
        seeds = ", ".join(map(str, g["seeds"])) or "—"
        lines.append(f"| {g['task']} | {g['policy']} | {g['setting']} | {seeds} | {rate} | {g['failed']} |")
    return "\n".join(lines)


def _delay_label(delay_ms: float, jitter_ms: float) -> str:
    return f"{delay_ms:g} ms" + (f" + U(0, {jitter_ms:g}) ms" if jitter_ms else "")


def _by_task_and_policy(groups: list[dict]) -> dict[tuple[str, str], list[dict]]:
    blocks: dict[tuple[str, str], list[dict]] = {}
    for g in groups:
        blocks.setdefault((g["task"], g["policy"]), []).append(g)
    return blocks


def delay_table(groups: list[dict]) -> str:
    """Markdown: success (CI95) per executor mode (rows) and injected delay (columns), seeds pooled."""
    blocks = _by_task_and_policy(groups)
    parts = []
    for (task, policy), mine in blocks.items():
        delays = sorted({(g["delay_ms"], g["jitter_ms"]) for g in mine})
        modes = list(dict.fromkeys(g["mode"] for g in mine))
        cell = {(g["mode"], g["delay_ms"], g["jitter_ms"]): g for g in mine}
        lines = [] if len(blocks) == 1 else [f"**{task}, {policy}**", ""]
        lines += [
            "| mode | " + " | ".join(_delay_label(d, j) for d, j in delays) + " |",
            "|---|" + "---:|" * len(delays),
        ]
        for mode in modes:
            entries = []
            for d, j in delays:
                g = cell.get((mode, d, j))
                if g is None or not g["episodes"]:
                    entries.append("failed" if g else "—")
                else:
                    entries.append(_rate(g["successes"], g["episodes"], g["ci_low"], g["ci_high"]))
            lines.append(f"| {mode} | " + " | ".join(entries) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _episodes_note(groups: list[dict], per: str) -> str:
    counts = sorted({g["episodes"] for g in groups if g["episodes"]})
    if not counts:
        return "no finished cells"
    n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"seeds pooled, {n} episode{'' if n == '1' else 's'} per {per}, Wilson CI95"


def plot_settings(groups: list[dict], path: Path) -> None:
    """Bars: success rate per setting (x), one bar series per (task, policy), seeds pooled, CI95 error bars.

    The title (also the PNG's ``Title`` text) says what the bars show; groups whose cells all failed have no bar.
    """
    plt = _pyplot()
    settings = list(dict.fromkeys(g["setting"] for g in groups))
    series = {
        key: mine for key, mine in _by_task_and_policy(groups).items() if any(g["episodes"] for g in mine)
    }
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(settings) * len(series) + 2), 4.5))
    for i, ((task, policy), mine) in enumerate(series.items()):
        by_setting = {g["setting"]: g for g in mine}
        xs, rates, below, above = [], [], [], []
        for x, name in enumerate(settings):
            g = by_setting.get(name)
            if g and g["episodes"]:
                xs.append(x + (i - (len(series) - 1) / 2) * width)
                rates.append(g["success_rate"])
                below.append(g["success_rate"] - g["ci_low"])
                above.append(g["ci_high"] - g["success_rate"])
        ax.bar(xs, rates, width=width, yerr=[below, above], capsize=3, label=f"{task}, {policy}")
    ax.set_xticks(
        range(len(settings)), settings, rotation=30 if len(settings) > 3 else 0, ha="right", fontsize=8
    )
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    tasks = ", ".join(dict.fromkeys(g["task"] for g in groups))
    title = f"{tasks}: success rate per setting\n({_episodes_note(groups, 'bar')})"
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Title": title.replace("\n", " ")})
    plt.close(fig)


def plot_delay(groups: list[dict], path: Path) -> None:
    """Lines: success rate vs injected delay, one per executor mode (and task/policy when several), CI95 bars."""
    plt = _pyplot()
    blocks = _by_task_and_policy(groups)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for (task, policy), mine in blocks.items():
        for mode in dict.fromkeys(g["mode"] for g in mine):
            for jitter in sorted({g["jitter_ms"] for g in mine}):
                points = sorted(
                    (g for g in mine if g["mode"] == mode and g["jitter_ms"] == jitter and g["episodes"]),
                    key=lambda g: g["delay_ms"],
                )
                if not points:
                    continue
                label = mode + (f", jitter U(0, {jitter:g}) ms" if jitter else "")
                label += f" ({task}, {policy})" if len(blocks) > 1 else ""
                ax.errorbar(
                    [g["delay_ms"] for g in points],
                    [g["success_rate"] for g in points],
                    yerr=[
                        [g["success_rate"] - g["ci_low"] for g in points],
                        [g["ci_high"] - g["success_rate"] for g in points],
                    ],
                    marker="o",
                    capsize=3,
                    label=label,
                )
    ax.set_xlabel("injected delay per chunk request (ms, simulated time)")
    ax.set_ylabel("success rate")
    ax.set_ylim(-0.02, 1.02)
    what = ", ".join(f"{t}, {p}" for t, p in blocks) if len(blocks) == 1 else "per task and policy"
    title = f"Success vs injected delay: {what}\n({_episodes_note(groups, 'point')})"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Title": title.replace("\n", " ")})
    plt.close(fig)


def write_reports(rows: list[dict], out: Path) -> str:
    """Write every report of a sweep into ``out``; returns ``summary.md``'s text."""
    out = Path(out)
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    groups = pool_seeds(rows)
    text = f"{cell_table(rows)}\n\nSeeds pooled per setting:\n\n{pooled_table(groups)}\n"
    (out / "summary.md").write_text(text)
    plot_settings(groups, out / "summary.png")
    if any(r["delay_ms"] or r["jitter_ms"] for r in rows):
        (out / "delay.md").write_text(delay_table(groups) + "\n")
        plot_delay(groups, out / "delay.png")
    return text
