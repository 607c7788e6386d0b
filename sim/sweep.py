"""Sweeps: tasks × policies (checkpoints or the expert) × seeds × settings, one eval per cell.

Every cell is one :func:`manip.sim.eval.evaluate` run (the one worker loop: Env → ChunkSource → ChunkExecutor →
Env, with the setting's executor mode and injected delay). A cell's identity is its task, the policy's label and
checkpoint id (:func:`manip.real.client.sources.checkpoint_id`), the seed, the episode count and every setting:
its directory ``DIR/cells/<task>__<policy>__seed<S>__<setting>__<hash>/`` holds ``cell.json`` (that identity)
and ``results.json``. A re-run skips cells whose results exist and ran without error; changed settings or
retrained weights make new cells; a failed cell is an error in the table (one-line reason), makes ``manip sweep``
exit non-zero and runs again next time. Cells run in parallel as local worker processes (spawn), on a Ray cluster
(``ray_address``) or on SLURM through submitit (:mod:`manip.sim.sweep_dispatch`). At the end (also after Ctrl-C)
the sweep writes the reports of :mod:`manip.sim.sweep_report`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from manip.core.config import StrictConfig, load_config
from manip.core.errors import ManipError
from manip.real.client.executor import MODES
from manip.sim.eval import SourceSpec, evaluate
from manip.sim.tasks import get_task


class Setting(StrictConfig):
    """A named evaluation setting (what varies besides task, policy and seed).

    ``horizon`` overrides the task's episode length; ``action_steps``, ``executor``, ``ensemble_every``,
    ``delay_ms`` and ``jitter_ms`` the chunk execution (as ``manip eval --action-steps/--executor/
    --ensemble-every/--delay-ms/--jitter-ms``).
    """

    name: str = "default"
    horizon: int | None = Field(None, ge=1)
    action_steps: int | None = Field(None, ge=1)
    executor: Literal[MODES] | None = None
    ensemble_every: int | None = Field(None, ge=1)
    delay_ms: float | None = Field(None, ge=0)
    jitter_ms: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _ensemble_every_needs_ensemble(self):
        if self.ensemble_every is not None and self.executor != "ensemble":
            raise ValueError("ensemble_every applies only with executor: ensemble")
        return self


GRID_KEYS = tuple(name for name in Setting.model_fields if name != "name")


class SweepConfig(StrictConfig):
    """A sweep file (YAML). ``policies``: checkpoint directories or ``expert``.

    ``grid`` (optional) maps setting keys to lists of values: every combination is crossed with every entry of
    ``settings`` (named after its values, e.g. ``executor=rtc, delay_ms=100``).
    """

    tasks: list[str] = Field(min_length=1)
    policies: list[str] = Field(default_factory=lambda: ["expert"], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    episodes: int = Field(10, ge=1)
    settings: list[Setting] = Field(default_factory=lambda: [Setting()], min_length=1)
    grid: dict[str, list] = Field(default_factory=dict)
    workers: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _grid_keys_are_settings(self):
        for key, values in self.grid.items():
            if key not in GRID_KEYS:
                raise ValueError(f"grid: '{key}' is not a setting key (one of {', '.join(GRID_KEYS)})")
            if not values:
                raise ValueError(f"grid: '{key}' needs at least one value")
        self.all_settings()  # every combination must be a valid setting
        return self

    def all_settings(self) -> list[Setting]:
        """``settings`` crossed with every combination of ``grid`` values (``settings`` alone without a grid)."""
        if not self.grid:
            return list(self.settings)
        keys = list(self.grid)
        expanded = []
        for base in self.settings:
            for values in itertools.product(*(self.grid[k] for k in keys)):
                parts = [
                    f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in zip(keys, values, strict=True)
                ]
                name = ", ".join(([] if base.name == "default" else [base.name]) + parts)
                raw = {
                    **base.model_dump(exclude_none=True),
                    **dict(zip(keys, values, strict=True)),
                    "name": name,
                }
                try:
                    expanded.append(Setting.model_validate(raw))
                except ValidationError as exc:
                    reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                    raise ValueError(f"grid setting '{name}': {reasons}") from None
        return expanded


def policy_label(policy: str) -> str:
    """How a policy shows in tables: ``expert``, the checkpoint's folder name, or ``run/checkpoint``."""
    if policy == "expert":
        return "expert"
    path = Path(policy).resolve()
    return f"{path.parent.name}/{path.name}" if path.name == "checkpoint" else path.name


@dataclass(frozen=True)
class Cell:
    """One evaluation of the sweep; ``checkpoint_id`` is ``expert`` for the scripted expert."""

    task: str
    policy: str
    checkpoint_id: str
    seed: int
    setting: Setting
    episodes: int

    def identity(self) -> dict:
        """Everything that decides this cell's results (written to ``cell.json``)."""
        return {
            "task": self.task, "policy": policy_label(self.policy), "checkpoint_id": self.checkpoint_id,
            "seed": self.seed, "episodes": self.episodes, "setting": self.setting.model_dump(),
        }  # fmt: skip

    @property
    def name(self) -> str:
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:10]
        raw = f"{self.task}__{policy_label(self.policy)}__seed{self.seed}__{self.setting.name}__{digest}"
        return re.sub(r"[^A-Za-z0-9_.@-]+", "-", raw)

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
    resolved = [p if p == "expert" else str(Path(p).resolve()) for p in config.policies]
    if len(set(resolved)) != len(resolved):
        raise ManipError(f"{path}: policies lists the same policy twice: {config.policies}")
    names = [s.name for s in config.all_settings()]
    if len(set(names)) != len(names):
        raise ManipError(f"{path}: settings names must be unique, got {names}")
    return config


def cells_of(config: SweepConfig) -> list[Cell]:
    """Every cell of the sweep, in table order (task, policy, seed, setting)."""
    from manip.real.client.sources import checkpoint_id

    ids = {p: "expert" if p == "expert" else checkpoint_id(p) for p in config.policies}
    return [
        Cell(task, policy, ids[policy], seed, setting, config.episodes)
        for task in config.tasks
        for policy in config.policies
        for seed in config.seeds
        for setting in config.all_settings()
    ]


# -- one cell ---------------------------------------------------------------------------------------------------
def run_cell(cell: Cell, out: str) -> dict:
    """Evaluate one cell into ``out/cells/<cell>/``; returns its row (an ``error`` instead of results on failure).

    A cell fails when evaluating it raises or when any of its episodes ends with an error (a crashed worker, an
    observation the policy cannot take, …): its row then carries the first error as a one-line reason.
    """
    cell_dir = Path(out) / "cells" / cell.name
    cell_dir.mkdir(parents=True, exist_ok=True)
    (cell_dir / "error.txt").unlink(missing_ok=True)
    record = {**cell.identity(), "host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    (cell_dir / "cell.json").write_text(json.dumps(record, indent=2) + "\n")
    s = cell.setting
    try:
        results = evaluate(
            cell.source(), cell.task, cell.episodes, cell_dir, seed=cell.seed, workers=1, horizon=s.horizon,
            quiet=True, action_steps=s.action_steps, executor_mode=s.executor, ensemble_every=s.ensemble_every,
            delay_ms=s.delay_ms or 0.0, jitter_ms=s.jitter_ms or 0.0,
        )  # fmt: skip
    except Exception as exc:  # a failing cell is reported, the sweep goes on
        message = f"{type(exc).__name__}: {exc}"
        (cell_dir / "error.txt").write_text(message + "\n" + traceback.format_exc())
        return cell_row(cell, None, message)
    finally:
        (cell_dir / "cell.json").write_text(json.dumps({**record, "finished": time.time()}, indent=2) + "\n")
    error = episode_error(results)
    if error:
        (cell_dir / "error.txt").write_text(error + "\n")
    return cell_row(cell, results, error)


def episode_error(results: dict) -> str:
    """A one-line reason when any episode of ``results`` ended with an error, else ``""``."""
    failed = [e["error"] for e in results["per_episode"] if e.get("error")]
    if not failed:
        return ""
    return f"{len(failed)}/{results['episodes']} episode(s) failed: {failed[0]}"


def one_line(text: str, limit: int = 200) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    first = (text.strip().splitlines() or [""])[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def cell_row(cell: Cell, results: dict | None, error: str = "") -> dict:
    """The table row of a cell: its results, or (``error`` set) no numbers and the one-line reason."""
    s = cell.setting
    row = {
        "cell": cell.name, "task": cell.task, "policy": policy_label(cell.policy),
        "checkpoint_id": cell.checkpoint_id, "seed": cell.seed, "setting": s.name, "episodes": cell.episodes,
        "executor": s.executor or "", "delay_ms": s.delay_ms or 0.0, "jitter_ms": s.jitter_ms or 0.0,
    }  # fmt: skip
    if error or results is None:
        numbers = dict.fromkeys(("successes", "success_rate", "ci_low", "ci_high", "held_fraction"))
        return {**row, **numbers, "errors": None, "error": one_line(error or "no results")}
    return {
        **row,
        "successes": results["successes"],
        "success_rate": results["success_rate"],
        "ci_low": results["ci95"][0],
        "ci_high": results["ci95"][1],
        "held_fraction": results.get("held_fraction"),
        "errors": results.get("errors", 0),
        "error": "",
    }


def finished_row(cell: Cell, out: Path) -> dict | None:
    """The row of a cell that already ran without error (same identity), or None if it must run."""
    cell_dir = out / "cells" / cell.name
    try:
        results = json.loads((cell_dir / "results.json").read_text())
        recorded = json.loads((cell_dir / "cell.json").read_text())
    except (OSError, ValueError):
        return None  # never ran, or a torn file: run the cell again
    if "finished" not in recorded or (cell_dir / "error.txt").exists() or episode_error(results):
        return None
    if {k: recorded.get(k) for k in cell.identity()} != cell.identity():
        return None
    return cell_row(cell, results)


# -- the sweep --------------------------------------------------------------------------------------------------
def run_sweep(
    config: SweepConfig,
    out: str | Path,
    ray_address: str | None = None,
    slurm: dict | None = None,
    quiet: bool = False,
) -> dict:
    """Run every unfinished cell, then write the reports (also after Ctrl-C, with the cells that finished).

    Returns ``{"rows", "ran", "skipped", "failed", "interrupted", "table"}``; ``table`` is ``summary.md``'s text.
    """
    from manip.sim.report import write_report
    from manip.sim.sweep_dispatch import SweepInterrupted, run_local, run_ray, run_slurm
    from manip.sim.sweep_report import write_reports

    out = Path(out)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    cells = cells_of(config)
    done = {cell.name: finished_row(cell, out) for cell in cells}
    todo = [cell for cell in cells if done[cell.name] is None]
    interrupted = False
    new_rows: list[dict] = []
    try:
        if not todo:
            pass
        elif ray_address:
            new_rows = run_ray(todo, str(out), ray_address, config.workers, quiet)
        elif slurm is not None:
            new_rows = run_slurm(todo, str(out), slurm, quiet)
        else:
            new_rows = run_local(todo, str(out), config.workers, quiet)
    except SweepInterrupted as stop:
        new_rows, interrupted = stop.rows, True
    for row in new_rows:
        done[row["cell"]] = row
    rows = [done[c.name] or cell_row(c, None, "not run (interrupted)") for c in cells]
    table = write_reports(rows, out)
    write_report(out, rows)
    return {
        "rows": rows,
        "ran": len(new_rows),
        "skipped": len(cells) - len(todo),
        "failed": sum(bool(r["error"]) for r in rows),
        "interrupted": interrupted,
        "table": table,
    }
