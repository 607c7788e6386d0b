"""Simulation speed: steps/s raw robosuite vs ManipEnv (low-dim, image), camera frame ms before/after the cheap
rendering settings, reset time with/without a GL rebuild, eval episodes/min with 1 and 2 workers."""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np

from manip.sim.tasks import TASKS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="tasks to time (default: all)")
    parser.add_argument("--steps", type=int, default=200, help="steps per steps/s figure")
    parser.add_argument("--frames", type=int, default=50, help="frames per camera figure")
    parser.add_argument("--resets", type=int, default=5, help="resets per reset figure")
    parser.add_argument("--episodes", type=int, default=10, help="Lift expert episodes per eval figure")
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


def eval_rate(episodes: int) -> dict:
    from manip.sim.eval import SourceSpec, evaluate

    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            start = time.perf_counter()
            evaluate(SourceSpec("expert"), "Lift", episodes, f"{tmp}/w{workers}", workers=workers, quiet=True)
            figures[f"workers_{workers}"] = round(episodes / ((time.perf_counter() - start) / 60), 2)
    figures["scaling_efficiency"] = round(figures["workers_2"] / (2 * figures["workers_1"]), 3)
    return figures


def run(args: argparse.Namespace) -> dict:
    from manip.sim.render import choose_gl_backend
    from manip.sim.tasks import get_task

    for task in args.tasks:
        get_task(task)
    figures = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "gl": choose_gl_backend()},
        "settings": {
            "steps": args.steps,
            "frames": args.frames,
            "episodes": args.episodes,
            "image_size": args.image_size,
        },
        "steps_per_s": {task: steps_per_second(task, args.steps, args.image_size) for task in args.tasks},
        "camera_frame_ms_256px": camera_ms(args.frames, 256),
        "camera_frame_ms_84px": camera_ms(args.frames, 84),
        "reset_ms": reset_ms(args.resets),
        "eval_episodes_per_min_lift_expert": eval_rate(args.episodes),
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
        ):
            print(f"{key}: {figures[key]}")
    return figures
