"""Where a sweep's cells run: local worker processes, a Ray cluster or SLURM (submitit).

Each runner returns the rows of the cells it ran and shows progress on a terminal. Ctrl-C (SIGINT) stops a runner
within seconds: no new cell starts, running cells are stopped (local workers, the warm pool of
:mod:`manip.sim.workers`, close their envs and render contexts and exit, Ray tasks are cancelled, SLURM jobs
cancelled) and :class:`SweepInterrupted` carries the rows that finished, so the caller can still write the partial
summary.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from manip.core.errors import ManipError, require
from manip.core.progress import progress
from manip.sim.sweep import Cell, Setting, cell_row, one_line, run_cell


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep; ``rows`` are the cells that finished before it."""

    def __init__(self, rows: list[dict]):
        super().__init__("interrupted")
        self.rows = rows


def _crash_row(cell: Cell, where: str, exc: BaseException) -> dict:
    return cell_row(cell, None, f"{where}: {type(exc).__name__}: {one_line(str(exc))}")


# -- local worker processes -------------------------------------------------------------------------------------
def cell_call(cell: dict, out: str) -> dict:
    """One cell in a pool worker (:mod:`manip.sim.workers`): ``cell`` is a :class:`Cell` as JSON."""
    return run_cell(Cell(**{**cell, "setting": Setting.model_validate(cell["setting"])}), out)


def _cell_json(cell: Cell) -> dict:
    return {**asdict(cell), "setting": cell.setting.model_dump()}


def run_local(cells: list[Cell], out: str, workers: int, quiet: bool) -> list[dict]:
    """Run ``cells`` on this process's warm worker pool, at most ``workers`` at a time.

    Workers start once for the whole sweep (and stay for later evaluations in this process); each keeps its envs
    across the cells it gets. Ctrl-C: no queued cell starts, the running ones are stopped (their workers close
    their envs and render contexts and exit) and :class:`SweepInterrupted` carries the finished rows.
    """
    from manip.sim.workers import Call, shared_pool

    pool = shared_pool()
    calls = [Call("manip.sim.sweep_dispatch:cell_call", {"cell": _cell_json(c), "out": out}) for c in cells]
    rows: list[dict] = []
    try:
        finished = pool.run(calls, min(workers, len(cells)))
        for index, outcome in progress(finished, desc="sweep", total=len(cells), quiet=quiet, unit="cell"):
            if outcome.error:  # the worker died or the call raised
                rows.append(cell_row(cells[index], None, f"worker crashed: {one_line(outcome.error)}"))
            else:
                rows.append(outcome.value)
    except KeyboardInterrupt:
        pool.stop_busy()
        raise SweepInterrupted(rows) from None
    return rows


# -- Ray --------------------------------------------------------------------------------------------------------
def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """One-line error unless something listens at a Ray ``HOST:PORT`` (or ``ray://HOST:PORT``) address."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ManipError(f"--ray '{address}' must be HOST:PORT, ray://HOST:PORT, auto or local")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ManipError(
            f"--ray {address}: no Ray cluster answers there ({reason}); start one with `ray start --head` "
            "or pass --ray local"
        ) from None


def _connect_ray(ray, address: str, workers: int) -> None:
    import logging

    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address == "local":
        ray.init(num_cpus=workers, include_dashboard=False, **quiet)
        return
    check_reachable(address)
    try:
        ray.init(address=address, **quiet)
    except Exception as exc:  # reachable, but not a Ray cluster we can join
        raise ManipError(f"--ray {address}: cannot join the Ray cluster ({one_line(str(exc))})") from None


def _ray_rows(ray, cells: list[Cell], out: str, workers: int, inflight: dict) -> Iterator[dict]:
    """Keep at most ``workers`` cells running; yield each row as its cell finishes."""
    remote = ray.remote(num_cpus=1, max_retries=0)(run_cell)
    queue = iter(cells)

    def fill() -> None:
        while len(inflight) < workers:
            cell = next(queue, None)
            if cell is None:
                return
            inflight[remote.remote(cell, out)] = cell

    fill()
    while inflight:
        (ref,), _ = ray.wait(list(inflight), num_returns=1)
        cell = inflight.pop(ref)
        try:
            yield ray.get(ref)
        except Exception as exc:  # a worker that died (ray.exceptions.WorkerCrashedError, ...)
            yield _crash_row(cell, "ray task failed", exc)
        fill()


def run_ray(cells: list[Cell], out: str, address: str, workers: int, quiet: bool) -> list[dict]:
    """Run ``cells`` as Ray tasks, at most ``workers`` at a time (``local`` starts a Ray instance here)."""
    ray = require("ray", "sweep")
    _connect_ray(ray, address, workers)
    rows: list[dict] = []
    inflight: dict = {}
    try:
        for row in progress(
            _ray_rows(ray, cells, out, workers, inflight),
            desc="sweep",
            total=len(cells),
            quiet=quiet,
            unit="cell",
        ):
            rows.append(row)
    except KeyboardInterrupt:
        for ref in inflight:
            ray.cancel(ref, force=True)
        ray.shutdown()
        raise SweepInterrupted(rows) from None
    return rows


# -- SLURM ------------------------------------------------------------------------------------------------------
def run_slurm(cells: list[Cell], out: str, slurm: dict, quiet: bool) -> list[dict]:
    """Submit every cell as a SLURM job through submitit (local processes where there is no SLURM)."""
    submitit = require("submitit", "sweep")
    executor = submitit.AutoExecutor(folder=str(Path(out) / "slurm"))
    executor.update_parameters(**{"timeout_min": 60, "cpus_per_task": 2, **slurm})
    jobs = [executor.submit(run_cell, cell, out) for cell in cells]
    rows: list[dict] = []
    try:
        for cell, job in progress(
            zip(cells, jobs, strict=True), desc="sweep", total=len(cells), quiet=quiet, unit="cell"
        ):
            try:
                rows.append(job.result())
            except Exception as exc:
                rows.append(_crash_row(cell, "slurm job failed", exc))
    except KeyboardInterrupt:
        for job in jobs:
            if not job.done():
                job.cancel(check=False)
        raise SweepInterrupted(rows) from None
    return rows
