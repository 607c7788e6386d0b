"""Simulation speed: steps/s raw robosuite vs ManipEnv (low-dim, image), camera frame ms before/after the cheap
rendering settings, reset time with/without a GL rebuild, eval episodes/min with 1 and 2 workers (their ratio and
the warm pool's start-up), worker start-ups of a 4-cell sweep."""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from manip.sim.metaworld.tasks import is_metaworld
from manip.sim.tasks import TASKS


def configure(parser: argparse.ArgumentParser) -> None:
    robosuite_tasks = [name for name, spec in TASKS.items() if not is_metaworld(spec)]
    parser.add_argument(
        "--tasks", nargs="+", default=robosuite_tasks, help="tasks to time (default: every robosuite task)"
    )
    parser.add_argument("--steps", type=int, default=200, help="steps per steps/s figure")
    parser.add_argument("--frames", type=int, default=50, help="frames per camera figure")
    parser.add_argument("--resets", type=int, default=5, help="resets per reset figure")
    parser.add_argument("--episodes", type=int, default=40, help="Lift expert episodes per eval figure")
    parser.add_argument("--rounds", type=int, default=2, help="round-robin rounds of the 1- vs 2-worker eval")
    parser.add_argument("--image-size", type=int, default=84)


def _actions(steps: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(-0.3, 0.3, (steps, 7))


def _rate(step, actions) -> float:
    step(actions[0])  # warm-up (numba, caches)
    start = time.perf_counter()
    for action in actions:
        step(action)
    return len(actions) / (time.perf_counter() - start)


def _raw_env(task: str, images: bool, size: int):
    from manip.sim.render import import_robosuite

    suite = import_robosuite()  # first: headless GL and quiet logging before robosuite loads
    from robosuite.controllers import load_composite_controller_config

    spec = TASKS[task]
    return suite.make(
        spec.env_name, robots="Panda", controller_configs=load_composite_controller_config(controller="BASIC"),
        has_renderer=False, has_offscreen_renderer=images, use_camera_obs=images, camera_names=list(spec.cameras),
        camera_heights=size, camera_widths=size, control_freq=spec.control_rate, ignore_done=True, seed=0,
    )  # fmt: skip


def steps_per_second(task: str, steps: int, size: int) -> dict:
    from manip.sim.env import make_env

    actions = _actions(steps)
    figures = {}
    for mode in ("lowdim", "image"):
        raw = _raw_env(task, mode == "image", size)
        raw.reset()
        figures[f"raw_{mode}"] = round(_rate(raw.step, actions), 1)
        raw.close()
        env = make_env(task, obs_mode=mode, image_size=size, horizon=steps + 10)
        env.reset(seed=0)
        figures[f"wrapper_{mode}"] = round(_rate(env.step, actions), 1)
        env.close()
    return figures


def camera_ms(frames: int, side: int) -> dict:
    from manip.sim.env import make_env

    figures = {}
    for label, cheap in (("default", False), ("cheap", True)):
        env = make_env("Lift", offscreen=True, cheap_render=cheap)
        env.reset(seed=0)
        env.render("agentview", side)
        start = time.perf_counter()
        for _ in range(frames):
            env.render("agentview", side)
        figures[label] = round(1000 * (time.perf_counter() - start) / frames, 3)
        env.close()
    return figures


def reset_ms(resets: int) -> dict:
    from manip.sim.env import make_env

    figures = {}
    for label, hard in (("hard_reset_gl_rebuild", True), ("soft_reset", False)):
        env = make_env("Lift", obs_mode="image", hard_reset=hard)
        env.reset(seed=0)
        start = time.perf_counter()
        for seed in range(resets):
            env.reset(seed=seed)
        figures[label] = round(1000 * (time.perf_counter() - start) / resets, 1)
        env.close()
    return figures


def _spin(seconds: float, count) -> None:
    """Count plain Python loop iterations for ``seconds`` (a pure-CPU probe) into the shared ``count``."""
    end, n = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        for _ in range(10_000):
            n += 1
    with count.get_lock():
        count.value += n


def _cpu_work(processes: int, seconds: float) -> int:
    """Loop iterations that ``processes`` spawned pure-CPU processes get done in ``seconds`` together."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    count = context.Value("q", 0)
    spinners = [context.Process(target=_spin, args=(seconds, count)) for _ in range(processes)]
    for process in spinners:
        process.start()
    for process in spinners:
        process.join()
    return count.value


def eval_rate(episodes: int, rounds: int, probe_s: float = 5.0) -> dict:
    """Lift expert episodes/min with 1 worker (in-process) and 2 warm pool workers, measured round-robin.

    Start-up (spawn 2 workers, import robosuite, build their envs) is timed once on a fresh pool and kept out of
    the rates: the pool stays warm across evaluations, so it is paid once per process. Each round times both
    worker counts back to back (alternating which goes first), so a change in the machine's load hits both, and
    also the machine's ceiling: how much more pure-CPU work 2 processes get done than 1 (``cpu_ceiling``; 2.0 on
    2 idle cores, about 1.0 when other work already fills them).
    """
    from manip.sim.eval import SourceSpec, evaluate
    from manip.sim.workers import close_shared_pool, shared_pool

    expert = SourceSpec("expert")
    seconds = {1: 0.0, 2: 0.0}
    cpu = {1: 0, 2: 0}
    with tempfile.TemporaryDirectory() as tmp:
        close_shared_pool()
        start = time.perf_counter()
        pool = shared_pool()
        pool.ensure(2)
        pool.wait_ready()
        spawn_import_s = time.perf_counter() - start
        evaluate(expert, "Lift", 2, f"{tmp}/warm2", workers=2, quiet=True)  # each worker builds its env
        startup_s = time.perf_counter() - start
        evaluate(expert, "Lift", 1, f"{tmp}/warm1", workers=1, quiet=True)  # the in-process env
        for round_ in range(rounds):
            for workers in (1, 2) if round_ % 2 == 0 else (2, 1):
                cpu[workers] += _cpu_work(workers, probe_s)
                start = time.perf_counter()
                evaluate(expert, "Lift", episodes, f"{tmp}/r{round_}w{workers}", workers=workers, quiet=True)
                seconds[workers] += time.perf_counter() - start
    rate = {w: episodes * rounds / (seconds[w] / 60) for w in seconds}
    speedup, ceiling = rate[2] / rate[1], cpu[2] / cpu[1]
    return {
        "episodes": episodes,
        "rounds": rounds,
        "workers_1": round(rate[1], 2),
        "workers_2": round(rate[2], 2),
        "speedup_2_over_1": round(speedup, 3),
        "scaling_efficiency": round(speedup / 2, 3),
        "cpu_ceiling_2_over_1": round(ceiling, 3),
        "speedup_of_ceiling": round(speedup / ceiling, 3),
        "startup_s": round(startup_s, 2),
        "startup_spawn_import_s": round(spawn_import_s, 2),
        "workers_started": pool.started,
    }


def sweep_startups(cells: int, episodes: int) -> dict:
    """Worker processes started by a local sweep of ``cells`` Lift expert cells on 2 workers (fresh pool)."""
    from manip.sim.sweep import SweepConfig, cells_of
    from manip.sim.sweep_dispatch import run_local
    from manip.sim.workers import close_shared_pool, shared_pool

    close_shared_pool()
    config = SweepConfig(tasks=["Lift"], seeds=[100 * i for i in range(cells)], episodes=episodes, workers=2)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        rows = run_local(cells_of(config), tmp, config.workers, quiet=True)
        wall = time.perf_counter() - start
    return {
        "cells": cells,
        "episodes_per_cell": episodes,
        "failed_cells": sum(bool(r["error"]) for r in rows),
        "workers_started": shared_pool().started,
        "wall_s": round(wall, 2),
    }


def run(args: argparse.Namespace) -> dict:
    from manip.bench.commands import machine
    from manip.sim.render import choose_gl_backend
    from manip.sim.tasks import get_task

    for task in args.tasks:
        get_task(task)
    figures = {
        "machine": {**machine(), "gl": choose_gl_backend()},
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {
            "steps": args.steps,
            "frames": args.frames,
            "episodes": args.episodes,
            "rounds": args.rounds,
            "image_size": args.image_size,
        },
        "steps_per_s": {task: steps_per_second(task, args.steps, args.image_size) for task in args.tasks},
        "camera_frame_ms_256px": camera_ms(args.frames, 256),
        "camera_frame_ms_84px": camera_ms(args.frames, 84),
        "reset_ms": reset_ms(args.resets),
        "eval_episodes_per_min_lift_expert": eval_rate(args.episodes, args.rounds),
        "sweep_4_cells_worker_startups": sweep_startups(4, 5),
        "load_avg_1min_after": round(os.getloadavg()[0], 2),
    }
    if not args.json:
        print("steps/s           raw-lowdim wrapper-lowdim raw-image wrapper-image")
        for task, f in figures["steps_per_s"].items():
            print(
                f"{task:18s}{f['raw_lowdim']:10.1f}{f['wrapper_lowdim']:15.1f}{f['raw_image']:10.1f}{f['wrapper_image']:14.1f}"
            )
        for key in (
            "camera_frame_ms_256px",
            "camera_frame_ms_84px",
            "reset_ms",
            "eval_episodes_per_min_lift_expert",
            "sweep_4_cells_worker_startups",
        ):
            print(f"{key}: {figures[key]}")
    return figures
