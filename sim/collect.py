"""Collect demonstrations: a device (scripted, keyboard, SpaceMouse) drives the env, the recorder stores steps.

With a ``policy`` (a :class:`manip.real.client.sources.ChunkSource`) the policy drives and the operator takes over whenever
the device is active (RaC-style corrections); those steps are recorded with ``intervention=True``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from manip.core.errors import ManipError
from manip.core.progress import progress_enabled
from manip.sim.devices.base import Device
from manip.sim.env import ManipEnv
from manip.sim.tasks import controller_for

SUCCESS_EXTRA_STEPS = 5  # keep a few steps after success so the demo ends at rest


@dataclass
class CollectReport:
    """What a collection run did."""

    kept: int = 0
    attempted: int = 0
    successes: int = 0
    kept_seeds: list[int] = field(default_factory=list)


def open_store(path: str | Path):
    """Open ``path`` for appending, creating a new store when it does not exist."""
    from manip.data.store import EpisodeStore

    path = Path(path)
    return EpisodeStore.open(path, mode="a") if path.exists() else EpisodeStore.create(path)


class StatusLine:
    """A one-line live status on a terminal (episode, step, fps); silent elsewhere."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.last = time.perf_counter()
        self.fps = 0.0

    def update(self, text: str) -> None:
        now = time.perf_counter()
        self.fps = 0.9 * self.fps + 0.1 / max(now - self.last, 1e-6)
        self.last = now
        if self.enabled:
            sys.stderr.write(f"\r{text} | {self.fps:5.1f} fps   ")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def collect(
    env: ManipEnv,
    device: Device,
    out: str | Path,
    episodes: int,
    seed: int = 0,
    keep_failures: bool = False,
    policy=None,
    max_attempts: int | None = None,
    quiet: bool = False,
) -> CollectReport:
    """Record ``episodes`` episodes into the store at ``out`` (see the module docstring).

    Episode ``k`` tries seed ``seed + k``. Failed episodes are dropped unless ``keep_failures``; scripted
    collection then moves on to the next seed until ``episodes`` are kept (at most ``max_attempts`` seeds).
    """
    from manip.data.recorder import Recorder

    if episodes < 1:
        raise ManipError(f"--episodes must be >= 1, got {episodes}")
    recorder = Recorder(open_store(out))
    controller = None
    if policy is not None:
        controller = controller_for(policy, env.task)
    report = CollectReport()
    status = StatusLine(progress_enabled(quiet))
    limit = max_attempts if max_attempts is not None else max(3 * episodes, episodes + 10)
    next_seed = seed
    while report.kept < episodes and report.attempted < limit:
        episode_seed = next_seed
        outcome = _record_episode(env, device, recorder, episode_seed, controller, status, report)
        if outcome == "quit":
            break
        if outcome == "restart":
            continue  # same seed again
        report.attempted += 1
        next_seed += 1
        if outcome is not None:
            success = outcome
            report.successes += success
            if success or keep_failures:
                recorder.commit(success=success)
                report.kept += 1
                report.kept_seeds.append(episode_seed)
            else:
                recorder.discard()
    status.done()
    return report


def _record_episode(env, device, recorder, seed, controller, status, report):
    """Run one episode; returns success (bool), None (discarded), "restart" or "quit"."""
    obs = env.reset(seed=seed)
    device.start_episode(env, seed)
    if controller is not None:
        controller.reset()
        if hasattr(controller.source, "start_episode"):  # e.g. the scripted expert standing in for a policy
            controller.source.start_episode(seed)
    recorder.start_episode(
        task=env.task.name, instruction=env.task.instruction, seed=int(seed), source=device.source
    )
    success, after = False, 0
    for step in range(env.horizon):
        command = device.poll(env, obs)
        if command.event in ("discard", "restart", "quit"):
            recorder.discard()
            return None if command.event == "discard" else command.event
        if command.event == "finish":
            return bool(success or env.check_success())
        action, intervention = command.action, controller is not None and command.active
        if controller is not None and not command.active:
            action = controller.act(obs, step * env.dt).action
        recorder.add_step({**obs, "action": np.asarray(action, dtype=np.float32)}, intervention=intervention)
        obs, _reward, terminated, truncated, _info = env.step(action)
        success = success or terminated
        after += success
        status.update(
            f"episode {report.kept + 1} (seed {seed}) step {step + 1}/{env.horizon} "
            f"kept {report.kept} {'SUCCESS' if success else ''}"
        )
        if success and (after > SUCCESS_EXTRA_STEPS or device.human):
            break
        if truncated:
            break
    return bool(success)
