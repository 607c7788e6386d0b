"""The Meta-World table: success rate per difficulty group from ``results.json`` files, beside the papers' numbers.

``python -m manip.sim.metaworld.table DIR`` reads every ``results.json`` under ``DIR`` (``manip eval`` output,
e.g. the grid's ``DIR/<task>/seed<S>/eval/results.json``), averages the success rate per task and training seed
(a ``seed<S>`` folder in the path names the seed), then per group the mean over its tasks, and prints (and writes
``DIR/metaworld_table.md`` and ``.json``) the mean ± standard deviation over training seeds next to MP1,
FlowPolicy and DP3 as MP1 reports them (10 demonstrations per task, 3 training seeds). A group with tasks
missing is marked with the count it has.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from manip.core.errors import ManipError
from manip.sim.metaworld.tasks import GROUPS, difficulty_of

GROUP_TITLES = {"easy": "Easy", "medium": "Medium", "hard": "Hard", "very_hard": "Very hard"}
PAPERS: dict[str, dict[str, float]] = {
    "MP1": {"easy": 88.2, "medium": 68.0, "hard": 58.1, "very_hard": 67.2},
    "FlowPolicy": {"easy": 84.8, "medium": 58.2, "hard": 40.2, "very_hard": 52.2},
    "DP3": {"easy": 87.3, "medium": 44.5, "hard": 32.7, "very_hard": 39.4},
}
"""Average success rates (%) per group as MP1's paper reports them."""
SEED_PART = re.compile(r"^seed(\d+)$")


def training_seed(path: Path, root: Path) -> str:
    """The training seed a results file belongs to: the last ``seed<S>`` folder of its path under ``root``
    (``"-"`` when there is none)."""
    parts = [p for p in path.relative_to(root).parts[:-1] if SEED_PART.match(p)]
    return SEED_PART.match(parts[-1]).group(1) if parts else "-"


def collect_rates(root: str | Path) -> dict[str, dict[str, list[float]]]:
    """``{task: {training seed: [success rate per results file]}}`` for every Meta-World benchmark task found."""
    root = Path(root)
    if not root.is_dir():
        raise ManipError(f"{root}: not a directory")
    rates: dict[str, dict[str, list[float]]] = {}
    for path in sorted(root.rglob("results.json")):
        try:
            results = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ManipError(f"{path}: not a readable results.json ({exc})") from None
        task = results.get("task")
        if difficulty_of(str(task)) is None or "success_rate" not in results:
            continue
        rates.setdefault(task, {}).setdefault(training_seed(path, root), []).append(
            float(results["success_rate"])
        )
    return rates


def group_table(rates: dict[str, dict[str, list[float]]]) -> dict[str, dict]:
    """Per group: ``mean`` and ``std`` (over training seeds, %) of the mean over the group's tasks, the tasks
    found and the group's size; per task: its mean (%)."""
    table: dict[str, dict] = {}
    for group, names in GROUPS.items():
        found = [name for name in names if name in rates]
        seeds = sorted({seed for name in found for seed in rates[name]})
        per_seed = []
        for seed in seeds:
            tasks = [statistics.fmean(rates[name][seed]) for name in found if seed in rates[name]]
            if len(tasks) == len(found):  # a seed counts once it has every found task
                per_seed.append(100.0 * statistics.fmean(tasks))
        table[group] = {
            "mean": statistics.fmean(per_seed) if per_seed else None,
            "std": statistics.stdev(per_seed) if len(per_seed) > 1 else None,
            "seeds": len(per_seed),
            "tasks_found": len(found),
            "tasks": len(names),
            "per_task": {
                name: 100.0 * statistics.fmean(r for seed in rates[name].values() for r in seed)
                for name in found
            },
        }
    return table


def _cell(entry: dict) -> str:
    if entry["mean"] is None:
        return "—"
    text = f"{entry['mean']:.1f}" + (f" ± {entry['std']:.1f}" if entry["std"] is not None else "")
    if entry["tasks_found"] < entry["tasks"]:
        text += f" ({entry['tasks_found']}/{entry['tasks']} tasks)"
    return text


def markdown(table: dict[str, dict]) -> str:
    """The table as Markdown: one row per group, manip (this run) then the papers' numbers."""
    head = "| Meta-World | manip (this run) | " + " | ".join(PAPERS) + " |"
    lines = [head, "|---" * (2 + len(PAPERS)) + "|"]
    for group, title in GROUP_TITLES.items():
        entry = table[group]
        papers = " | ".join(f"{PAPERS[name][group]:.1f}" for name in PAPERS)
        lines.append(f"| {title} ({entry['tasks']}) | {_cell(entry)} | {papers} |")
    seeds = max((entry["seeds"] for entry in table.values()), default=0)
    lines.append("")
    lines.append(
        f"Success rate (%), mean ± std over {seeds} training seed(s) of the mean over the group's tasks."
    )
    return "\n".join(lines)


def write_table(root: str | Path) -> str:
    """Build the table from ``root``'s results files, write ``metaworld_table.md`` / ``.json`` there; return the
    Markdown."""
    rates = collect_rates(root)
    if not rates:
        raise ManipError(f"{root}: no results.json of a Meta-World benchmark task found")
    table = group_table(rates)
    text = markdown(table)
    Path(root, "metaworld_table.md").write_text(text + "\n")
    Path(root, "metaworld_table.json").write_text(
        json.dumps({"groups": table, "papers": PAPERS}, indent=2) + "\n"
    )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manip.sim.metaworld.table", description=__doc__.split("\n")[0]
    )
    parser.add_argument("dir", metavar="DIR", help="folder searched for results.json files")
    args = parser.parse_args(argv)
    try:
        print(write_table(args.dir))
    except ManipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
