"""Sweeps: tasks × policies (checkpoints or the expert) × seeds × settings, one eval per cell.

Cells run in parallel as local worker processes (spawn), on a Ray cluster (``ray_address``) or on SLURM through
submitit. Each cell writes ``DIR/cells/<cell>/results.json``; a re-run skips cells whose results exist. At the
end the sweep writes ``DIR/summary.md``, ``DIR/summary.csv`` and ``DIR/summary.png`` (success with CI95 per
cell). A cell that fails is reported in the table with its error; the other cells go on.
"""

from __future__ import annotations

import csv
import json
import re
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from manip.core.config import StrictConfig, load_config
from manip.core.errors import ManipError
from manip.core.progress import progress
from manip.real.client.executor import MODES
from manip.sim.eval import SourceSpec, evaluate
from manip.sim.tasks import get_task


class Setting(StrictConfig):
    """A named evaluation setting (what varies besides task, policy and seed).

    ``horizon`` overrides the task's episode length; ``action_steps``, ``executor`` and ``ensemble_every`` the
    chunk execution (as ``manip eval --action-steps/--executor/--ensemble-every``).
    """

    name: str = "default"
    horizon: int | None = Field(None, ge=1)
    action_steps: int | None = Field(None, ge=1)
    executor: Literal[MODES] | None = None
    ensemble_every: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _ensemble_every_needs_ensemble(self):
        if self.ensemble_every is not None and self.executor != "ensemble":
            raise ValueError("ensemble_every applies only with executor: ensemble")
        return self


class SweepConfig(StrictConfig):
    """A sweep file (YAML). ``policies``: checkpoint directories or ``expert``."""

    tasks: list[str] = Field(min_length=1)
    policies: list[str] = Field(default_factory=lambda: ["expert"], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    episodes: int = Field(10, ge=1)
    settings: list[Setting] = Field(default_factory=lambda: [Setting()], min_length=1)
    workers: int = Field(2, ge=1)


@dataclass(frozen=True)
class Cell:
    """One evaluation of the sweep."""

    task: str
    policy: str
    seed: int
    setting: Setting
    episodes: int

    @property
    def name(self) -> str:
        label = "expert" if self.policy == "expert" else Path(self.policy).name
        raw = f"{self.task}__{label}__seed{self.seed}__{self.setting.name}"
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw)

    def source(self) -> SourceSpec:
        if self.policy == "expert":
            return SourceSpec("expert")
        return SourceSpec("checkpoint", path=str(Path(self.policy).resolve()))


def load_sweep(path: str | Path, overrides: list[str] | None = None) -> SweepConfig:
    """Read and check a sweep file (unknown keys, tasks or missing checkpoints are one-line errors)."""
    config = load_config(SweepConfig, path, overrides)
    for task in config.tasks:
        get_task(task)
    for policy in config.policies:
        if policy != "expert" and not (Path(policy) / "config.json").is_file():
            raise ManipError(f"{path}: policy '{policy}' is neither 'expert' nor a checkpoint directory")
    names = [s.name for s in config.settings]
    if len(set(names)) != len(names):
        raise ManipError(f"{path}: settings names must be unique, got {names}")
    return config


def cells_of(config: SweepConfig) -> list[Cell]:
    return [
        Cell(task, policy, seed, setting, config.episodes)
        for task in config.tasks
        for policy in config.policies
        for seed in config.seeds
        for setting in config.settings
    ]


def run_cell(cell: Cell, out: str) -> dict:
    """Evaluate one cell into ``out/cells/<cell>/``; returns its row (an ``error`` instead of results on failure)."""
    cell_dir = Path(out) / "cells" / cell.name
    try:
        results = evaluate(
            cell.source(), cell.task, cell.episodes, cell_dir, seed=cell.seed, workers=1,
            horizon=cell.setting.horizon, quiet=True, action_steps=cell.setting.action_steps,
            executor_mode=cell.setting.executor, ensemble_every=cell.setting.ensemble_every,
        )  # fmt: skip
    except Exception as exc:  # a failing cell is reported, the sweep goes on
        cell_dir.mkdir(parents=True, exist_ok=True)
        message = f"{type(exc).__name__}: {exc}"
        (cell_dir / "error.txt").write_text(message + "\n" + traceback.format_exc())
        return _row(cell, None, message)
    return _row(cell, results)


def _row(cell: Cell, results: dict | None, error: str = "") -> dict:
    row = {
        "cell": cell.name, "task": cell.task, "policy": cell.policy, "seed": cell.seed,
        "setting": cell.setting.name, "episodes": cell.episodes,
    }  # fmt: skip
    if results is None:
        return {
            **row,
            "successes": 0,
            "success_rate": 0.0,
            "ci_low": 0.0,
            "ci_high": 0.0,
            "errors": 0,
            "error": error,
        }
    return {
        **row,
        "successes": results["successes"],
        "success_rate": results["success_rate"],
        "ci_low": results["ci95"][0],
        "ci_high": results["ci95"][1],
        "errors": results.get("errors", 0),
        "error": "",
    }


def _finished(cell: Cell, out: Path) -> dict | None:
    path = out / "cells" / cell.name / "results.json"
    if not path.is_file():
        return None
    try:
        return _row(cell, json.loads(path.read_text()))
    except (ValueError, KeyError):
        return None  # a torn file: run the cell again


# -- dispatch ---------------------------------------------------------------------------------------------------
def _run_local(cells: list[Cell], out: str, workers: int, quiet: bool) -> list[dict]:
    import multiprocessing

    rows = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(cells)), mp_context=context) as pool:
        futures = {pool.submit(run_cell, cell, out): cell for cell in cells}
        for future in progress(
            as_completed(futures), desc="sweep", total=len(cells), quiet=quiet, unit="cell"
        ):
            try:
                rows.append(future.result())
            except Exception as exc:  # the worker process died
                rows.append(_row(futures[future], None, f"worker crashed: {type(exc).__name__}"))
    return rows


def _run_ray(cells: list[Cell], out: str, address: str) -> list[dict]:
    import logging

    from manip.core.errors import require

    ray = require("ray", "sweep")
    if not ray.is_initialized():
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        if address == "local":
            ray.init(num_cpus=2, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    remote = ray.remote(num_cpus=1)(run_cell)
    refs = [remote.remote(cell, out) for cell in cells]
    rows = []
    for cell, ref in zip(cells, refs, strict=True):
        try:
            rows.append(ray.get(ref))
        except Exception as exc:  # a worker that died (ray.exceptions.WorkerCrashedError, ...)
            rows.append(_row(cell, None, f"ray task failed: {type(exc).__name__}"))
    return rows


def _run_slurm(cells: list[Cell], out: str, slurm: dict) -> list[dict]:
    from manip.core.errors import require

    submitit = require("submitit", "sweep")
    executor = submitit.AutoExecutor(folder=str(Path(out) / "slurm"))
    executor.update_parameters(**{"timeout_min": 60, "cpus_per_task": 2, **slurm})
    jobs = [executor.submit(run_cell, cell, out) for cell in cells]
    rows = []
    for cell, job in zip(cells, jobs, strict=True):
        try:
            rows.append(job.result())
        except Exception as exc:
            rows.append(_row(cell, None, f"slurm job failed: {type(exc).__name__}"))
    return rows


def run_sweep(
    config: SweepConfig,
    out: str | Path,
    ray_address: str | None = None,
    slurm: dict | None = None,
    quiet: bool = False,
) -> dict:
    """Run every unfinished cell, then write the table and the plot; returns ``{"rows", "ran", "skipped"}``."""
    out = Path(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    cells = cells_of(config)
    done = {cell.name: _finished(cell, out) for cell in cells}
    todo = [cell for cell in cells if done[cell.name] is None]
    if todo:
        if ray_address:
            new_rows = _run_ray(todo, str(out), ray_address)
        elif slurm is not None:
            new_rows = _run_slurm(todo, str(out), slurm)
        else:
            new_rows = _run_local(todo, str(out), config.workers, quiet)
        for row in new_rows:
            done[row["cell"]] = row
    rows = [done[cell.name] for cell in cells]
    write_table(rows, out)
    write_plot(rows, out / "summary.png")
    return {"rows": rows, "ran": len(todo), "skipped": len(cells) - len(todo)}


# -- reports ----------------------------------------------------------------------------------------------------
COLUMNS = [
    "task",
    "policy",
    "seed",
    "setting",
    "episodes",
    "successes",
    "success_rate",
    "ci_low",
    "ci_high",
    "errors",
    "error",
]


def write_table(rows: list[dict], out: Path) -> None:
    """``summary.csv`` and ``summary.md``: one row per cell."""
    with (out / "summary.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "| task | policy | seed | setting | success | CI95 | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        success = (
            "failed: " + r["error"]
            if r["error"]
            else f"{r['successes']}/{r['episodes']} ({100 * r['success_rate']:.0f} %)"
        )
        ci = "" if r["error"] else f"{100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f} %"
        policy = r["policy"] if r["policy"] == "expert" else Path(r["policy"]).name
        lines.append(
            f"| {r['task']} | {policy} | {r['seed']} | {r['setting']} | {success} | {ci} | {r['errors']} |"
        )
    (out / "summary.md").write_text("\n".join(lines) + "\n")


def write_plot(rows: list[dict], path: Path) -> None:
    """A bar per cell: success rate with its Wilson CI95 (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r["cell"].replace("__", "\n") for r in rows]
    rates = [r["success_rate"] for r in rows]
    below = [r["success_rate"] - r["ci_low"] for r in rows]
    above = [r["ci_high"] - r["success_rate"] for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(rows)), 4.0))
    ax.bar(range(len(rows)), rates, yerr=[below, above], capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(rows)), labels, fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (Wilson CI95)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
