"""The Meta-World grid: for every task, scripted demos → one training per training seed → a held-out evaluation,
then the per-difficulty table (:mod:`manip.sim.metaworld.table`).

``python -m manip.sim.metaworld.grid GRID.yaml [key=value ...] --out DIR [--jobs N]`` (grid files:
``configs/grids/*.yaml``). Layout::

    DIR/<task>/demos.zarr                   the task's demonstrations (``demos`` episodes from ``demo_seed``)
    DIR/<task>/seed<S>/train/checkpoint/    the policy trained with ``trainer.seed=S``
    DIR/<task>/seed<S>/eval/results.json    its evaluation (``episodes`` seeds from ``eval_seed``)
    DIR/metaworld_table.md / .json          the table

Every step is skipped when its output exists, so a stopped grid continues where it stopped (a training that
died half-way is started again). Units (task × seed) run in ``--jobs`` spawned processes; a unit that fails is
reported and the others go on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Literal

from pydantic import Field

from manip.core.config import StrictConfig, load_config
from manip.core.errors import ManipError
from manip.sim.metaworld.tasks import BENCHMARK_TASKS
from manip.sim.tasks import get_task


class GridConfig(StrictConfig):
    """A grid file. ``config``: the training config (path relative to the working directory) and ``overrides``
    its ``key=value`` overrides; ``episodes`` evaluation episodes per (task, training seed) from ``eval_seed``."""

    tasks: list[str] = Field(default_factory=lambda: list(BENCHMARK_TASKS), min_length=1)
    train_seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    demos: int = Field(10, ge=1)
    demo_seed: int = 0
    obs: Literal["lowdim", "image", "points"] = "points"
    config: str
    overrides: list[str] = Field(default_factory=list)
    episodes: int = Field(20, ge=1)
    eval_seed: int = 100000
    eval_workers: int = Field(1, ge=1)


def demos_path(out: Path, task: str) -> Path:
    return out / task / "demos.zarr"


def run_dir(out: Path, task: str, seed: int) -> Path:
    return out / task / f"seed{seed}"


def collect_demos(grid: GridConfig, out: Path, task: str) -> Path:
    """The task's demonstration store, recorded with its scripted expert unless it exists."""
    from manip.sim.collect import collect
    from manip.sim.devices.scripted import ScriptedDevice
    from manip.sim.env import make_env

    path = demos_path(out, task)
    if (path / "zarr.json").is_file() or (path / ".zgroup").is_file():
        return path
    shutil.rmtree(path, ignore_errors=True)  # a store left half-written
    path.parent.mkdir(parents=True, exist_ok=True)
    env = make_env(task, obs_mode=grid.obs)
    try:
        report = collect(env, ScriptedDevice(task), path, grid.demos, seed=grid.demo_seed, quiet=True)
    finally:
        env.close()
    if report.kept < grid.demos:
        raise ManipError(
            f"{task}: the scripted expert succeeded in only {report.kept} of {report.attempted} tries"
        )
    return path


def finished_results(folder: Path) -> dict | None:
    """``folder/results.json`` of an evaluation that ran without errors, else None (it must run)."""
    try:
        results = json.loads((folder / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return results if not results.get("errors") else None


def train_and_evaluate(grid: GridConfig, out: Path, task: str, seed: int) -> dict:
    """Train (unless a checkpoint exists) and evaluate (unless results exist) one task × training seed."""
    from manip.policies.train_config import load_train_config
    from manip.policies.training import run_training
    from manip.sim.eval import SourceSpec, evaluate, release_worker_resources

    unit = run_dir(out, task, seed)
    train, checkpoint = unit / "train", unit / "train" / "checkpoint"
    if not (checkpoint / "config.json").is_file():
        shutil.rmtree(train, ignore_errors=True)  # a training that stopped half-way starts again
        overrides = [
            *grid.overrides,
            f"task={task}",
            f"data.path={demos_path(out, task)}",
            f"trainer.seed={seed}",
        ]
        run_training(load_train_config(grid.config, overrides), train, quiet=True)
    results = finished_results(unit / "eval")
    if results is None:
        source = SourceSpec("checkpoint", path=str(checkpoint.resolve()))
        try:
            results = evaluate(
                source, task, grid.episodes, unit / "eval", seed=grid.eval_seed, workers=grid.eval_workers,
                quiet=True,
            )  # fmt: skip
        finally:
            release_worker_resources()  # close this process's env (its GL contexts) before the next unit
    return {"task": task, "seed": seed, "success_rate": results["success_rate"]}


def run_unit(grid: GridConfig, out: str, task: str, seeds: list[int]) -> list[dict]:
    """One task: its demos, then every training seed (in a worker process); errors become rows."""
    rows = []
    try:
        collect_demos(grid, Path(out), task)
    except Exception as exc:
        return [{"task": task, "seed": s, "error": f"demos: {type(exc).__name__}: {exc}"} for s in seeds]
    for seed in seeds:
        try:
            rows.append(train_and_evaluate(grid, Path(out), task, seed))
        except Exception as exc:
            (run_dir(Path(out), task, seed)).mkdir(parents=True, exist_ok=True)
            (run_dir(Path(out), task, seed) / "error.txt").write_text(traceback.format_exc())
            rows.append({"task": task, "seed": seed, "error": f"{type(exc).__name__}: {exc}"})
    return rows


def run_grid(grid: GridConfig, out: str | Path, jobs: int = 1) -> tuple[list[dict], str]:
    """Run every task (``jobs`` tasks at a time, spawned processes); returns the rows and the table's Markdown."""
    import multiprocessing

    from manip.sim.metaworld.table import write_table

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if jobs == 1:
        for task in grid.tasks:
            rows += run_unit(grid, str(out), task, grid.train_seeds)
            print(_progress(rows), file=sys.stderr)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(jobs, mp_context=context) as pool:
            futures = [pool.submit(run_unit, grid, str(out), task, grid.train_seeds) for task in grid.tasks]
            for future in as_completed(futures):
                rows += future.result()
                print(_progress(rows), file=sys.stderr)
    table = write_table(out) if any("error" not in row for row in rows) else ""
    return rows, table


def _progress(rows: list[dict]) -> str:
    last = rows[-1] if rows else {}
    state = last.get("error") or f"{100 * last.get('success_rate', 0):.0f} %"
    return f"grid: {len(rows)} unit(s) done; last {last.get('task')} seed {last.get('seed')}: {state}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manip.sim.metaworld.grid", description=__doc__.split("\n")[0]
    )
    parser.add_argument("grid", metavar="GRID.yaml", help="grid file (configs/grids/*.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="override grid-file keys")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--jobs", type=int, default=1, help="tasks run in parallel (spawned processes)")
    args = parser.parse_args(argv)
    try:
        grid = load_config(GridConfig, args.grid, args.overrides)
        for task in grid.tasks:
            get_task(task)
        if not Path(grid.config).is_file():
            raise ManipError(
                f"{args.grid}: config '{grid.config}' does not exist (paths are relative to {Path.cwd()})"
            )
        if args.jobs < 1:
            raise ManipError(f"--jobs must be >= 1, got {args.jobs}")
        rows, table = run_grid(grid, args.out, args.jobs)
    except ManipError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failed = [row for row in rows if "error" in row]
    for row in failed:
        print(f"failed: {row['task']} seed {row['seed']}: {row['error']}", file=sys.stderr)
    print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
