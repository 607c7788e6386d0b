"""Where a sweep's cells run: local worker processes, a Ray cluster or SLURM (submitit).

Each runner returns the rows of the cells it ran and shows progress on a terminal. Ctrl-C (SIGINT) stops a runner
within seconds: no new cell starts, running cells are stopped (local workers close their env and render contexts
and exit, Ray tasks are cancelled, SLURM jobs cancelled) and :class:`SweepInterrupted` carries the rows that
finished, so the caller can still write the partial summary.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

from manip.core.errors import ManipError, require
from manip.core.progress import progress
from manip.sim.sweep import Cell, cell_row, one_line, run_cell

STOP_GRACE_S = 5.0


class SweepInterrupted(Exception):
    """Ctrl-C during a sweep; ``rows`` are the cells that finished before it."""

    def __init__(self, rows: list[dict]):
        super().__init__("interrupted")
        self.rows = rows


def _crash_row(cell: Cell, where: str, exc: BaseException) -> dict:
    return cell_row(cell, None, f"{where}: {type(exc).__name__}: {one_line(str(exc))}")


# -- local worker processes -------------------------------------------------------------------------------------
def _worker_init() -> None:
    """In each worker: Ctrl-C is the parent's to handle; SIGTERM closes the env and exits without cleanup noise."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _close_and_exit)


def _close_and_exit(_signum, _frame) -> None:
    import os

    try:
        from manip.sim.eval import release_worker_resources

        release_worker_resources()
    finally:
        os._exit(143)


@contextmanager
def _sigint_ignored():
    """Workers spawned inside start with SIGINT ignored, so a Ctrl-C during their start-up cannot hit them."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued cells, then stop the running ones (SIGTERM: the worker closes its env and exits)."""
    import multiprocessing

    pool.shutdown(wait=False, cancel_futures=True)
    workers = multiprocessing.active_children()
    for process in workers:
        process.terminate()
    for process in workers:
        process.join(STOP_GRACE_S)
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=True)


def run_local(cells: list[Cell], out: str, workers: int, quiet: bool) -> list[dict]:
    """Run ``cells`` in up to ``workers`` spawned processes (each reuses its env across the cells it gets)."""
    import multiprocessing

    rows: list[dict] = []
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(min(workers, len(cells)), mp_context=context, initializer=_worker_init)
    with _sigint_ignored():
        futures = {pool.submit(run_cell, cell, out): cell for cell in cells}
    try:
        for future in progress(
            as_completed(futures), desc="sweep", total=len(cells), quiet=quiet, unit="cell"
        ):
            try:
                rows.append(future.result())
            except Exception as exc:  # the worker process died
                rows.append(_crash_row(futures[future], "worker crashed", exc))
    except KeyboardInterrupt:
        _stop_workers(pool)
        raise SweepInterrupted(rows) from None
    pool.shutdown()
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
