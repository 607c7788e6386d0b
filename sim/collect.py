"""Collect demonstrations: a device (scripted, keyboard, SpaceMouse) drives the env, the recorder stores steps.

With a ``policy`` (a :class:`manip.real.client.sources.ChunkSource`) the policy drives and the operator takes over whenever
the device is active (RaC-style corrections); those steps are recorded with ``intervention=True``.

How an episode starts, how fast it runs and whether it is kept is up to the run's front end: :class:`Unattended`
(scripted collection: no window, no pacing, successes kept and failures dropped unless ``keep_failures``) or
:class:`manip.sim.teleop.TeleopUI` (a human: a viewer window, pacing at the task's control rate, an episode
that starts on the operator's first move, and a keep / discard / redo prompt at its end).

Seeds: episode seeds follow on from the store's last recorded seed when ``seed`` is None, so appending never
repeats an initial state; an explicit ``seed`` that repeats stored seeds draws a warning.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from manip.core.errors import ManipError
from manip.core.progress import progress_enabled
from manip.real.client.sources import ROBOSUITE_OSC_ACTION
from manip.sim.devices.base import Device
from manip.sim.env import ManipEnv
from manip.sim.tasks import controller_for

SUCCESS_EXTRA_STEPS = 5  # keep a few steps after success so the demo ends at rest
DECISIONS = ("keep", "discard", "redo", "quit")


@dataclass
class CollectReport:
    """What a collection run did."""

    kept: int = 0
    attempted: int = 0
    successes: int = 0
    discarded: int = 0
    kept_seeds: list[int] = field(default_factory=list)
    first_seed: int = 0
    stopped: bool = False  # the operator quit before ``episodes`` were kept


@dataclass
class Episode:
    """One recorded attempt: how it ended (success, timeout, finish, discard, restart or quit)."""

    seed: int
    steps: int = 0
    success: bool = False
    ended: str = ""
    timestamps: list[float] = field(default_factory=list)  # seconds from the first step (paced runs only)
    meta: dict = field(default_factory=dict)  # extra per-episode metadata to store (e.g. corrections)
    started_at: float | None = None  # the first paced step's clock time
    steps_after_success: int = 0

    def record_and_step(
        self, env, recorder, step: int, data: dict, action, intervention: bool, now, front, report, command
    ):
        """Record ``data`` (the observation + action of step ``step``), step ``env`` with ``action`` and show it;
        returns ``(obs, truncated)``. Sets ``ended = "success"`` once the success has run its extra steps."""
        recorder.add_step(data, intervention=intervention)
        if now is not None:
            self.started_at = now if self.started_at is None else self.started_at
            self.timestamps.append(round(now - self.started_at, 4))
        obs, _reward, terminated, truncated, _info = env.step(action)
        self.steps = step + 1
        self.success = self.success or terminated
        self.steps_after_success += self.success
        front.show(env, self, report, command)
        if self.success and self.steps_after_success > SUCCESS_EXTRA_STEPS:
            self.ended = "success"
        return obs, truncated


def open_store(path: str | Path):
    """Open ``path`` for appending, creating a new store when it does not exist."""
    from manip.data.store import EpisodeStore

    path = Path(path)
    return EpisodeStore.open(path, mode="a") if path.exists() else EpisodeStore.create(path)


def stored_seeds(store) -> list[int]:
    """The ``seed`` of every stored episode that records one."""
    seeds = (store.episode_meta(i).get("seed") for i in range(store.num_episodes))
    return [int(s) for s in seeds if isinstance(s, (int, float)) and not isinstance(s, bool)]


def first_seed_for(store, seed: int | None, warn) -> int:
    """The first episode seed: ``seed``, or one past the store's last seed when None (0 for a new store).

    ``warn(text)`` is told when an explicit ``seed`` repeats seeds already in the store.
    """
    seeds = stored_seeds(store)
    if seed is None:
        return max(seeds) + 1 if seeds else 0
    if seeds and seed <= max(seeds):
        warn(
            f"collect: warning: {store.path} already holds seeds up to {max(seeds)}; --seed {seed} may repeat "
            f"their initial states (omit --seed to continue at {max(seeds) + 1})"
        )
    return int(seed)


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


class Unattended:
    """The front end of scripted collection: starts at once, runs as fast as it can, decides by rule."""

    paced = False

    def __init__(self, keep_failures: bool = False, quiet: bool = False):
        self.keep_failures = keep_failures
        self.status = StatusLine(progress_enabled(quiet))

    def ready(self, env, device, obs, episode: Episode, report: CollectReport) -> bool:
        """Whether to start recording (False: the operator quit)."""
        return True

    def tick(self) -> float | None:
        """Wait for the next control tick; its time in seconds, or None when unpaced."""
        return None

    def event(self) -> str | None:
        """An episode event from the front end itself (e.g. a key in the viewer window)."""
        return None

    def show(self, env, episode: Episode, report: CollectReport, command) -> None:
        self.status.update(
            f"episode {report.kept + 1} (seed {episode.seed}) step {episode.steps}/{env.horizon} "
            f"kept {report.kept} {'SUCCESS' if episode.success else ''}"
        )

    def decide(self, env, device, episode: Episode, report: CollectReport) -> str:
        """keep, discard, redo or quit for an episode that ended by success, timeout or ``finish``."""
        return "keep" if episode.success or self.keep_failures else "discard"

    def announce(self, text: str) -> None:
        """Tell the operator what happened to the last episode."""

    def close(self) -> None:
        self.status.done()


def collect(
    env: ManipEnv,
    device: Device,
    out: str | Path,
    episodes: int,
    seed: int | None = None,
    keep_failures: bool = False,
    policy=None,
    max_attempts: int | None = None,
    quiet: bool = False,
    front=None,
    episode_runner=None,
) -> CollectReport:
    """Record ``episodes`` episodes into the store at ``out`` (see the module docstring).

    Episode ``k`` tries seed ``first + k`` (``first``: ``seed``, or one past the store's last seed). ``front``
    (default :class:`Unattended`) starts, paces and judges episodes; an operator's redo retries the same seed.
    Unattended collection moves on to the next seed until ``episodes`` are kept, at most ``max_attempts``
    seeds; a human front end asks until the operator quits. ``episode_runner`` (default: the plain recording loop)
    runs one episode with the same arguments and contract, e.g. :func:`manip.sim.corrections.record_correction_episode`.
    """
    from manip.data.recorder import Recorder

    if episodes < 1:
        raise ManipError(f"--episodes must be >= 1, got {episodes}")
    store = open_store(out)
    store.set_attrs(
        control_rate=float(env.control_rate),
        action_semantics=getattr(env, "action_semantics", ROBOSUITE_OSC_ACTION),
    )
    recorder = Recorder(store)
    front = front or Unattended(keep_failures, quiet)
    controller = controller_for(policy, env.task) if policy is not None else None
    report = CollectReport()
    report.first_seed = next_seed = first_seed_for(store, seed, lambda text: print(text, file=sys.stderr))
    limit = max_attempts if max_attempts is not None else max(3 * episodes, episodes + 10)
    if front.paced and max_attempts is None:
        limit = None  # a person decides when to stop
    try:
        while report.kept < episodes and (limit is None or report.attempted < limit):
            episode = (episode_runner or _record_episode)(
                env, device, recorder, next_seed, controller, front, report
            )
            decision = _decision(env, device, front, episode, report)
            if decision == "quit":
                recorder.discard()
                report.stopped = True
                break
            if decision == "redo":
                recorder.discard()
                front.announce(f"redo: seed {episode.seed} again")
                continue
            report.attempted += 1
            report.successes += episode.success
            next_seed += 1
            if decision == "keep":
                meta = _paced_meta(env, episode) if front.paced else {}
                recorder.commit(success=episode.success, **episode.meta, **meta)
                report.kept += 1
                report.kept_seeds.append(episode.seed)
                front.announce(f"kept episode {report.kept} (seed {episode.seed}, {_outcome(episode)})")
            else:
                recorder.discard()
                report.discarded += 1
                front.announce(f"discarded seed {episode.seed} ({_outcome(episode)})")
    finally:
        if recorder.recording:
            recorder.discard()
        front.close()
    return report


def _paced_meta(env, episode: Episode) -> dict:
    """Per-episode metadata of a paced (human) episode: its control rate, step times and how it ended."""
    return {"control_rate": env.control_rate, "timestamps": episode.timestamps, "ended": episode.ended}


def _outcome(episode: Episode) -> str:
    state = "success" if episode.success else "not successful"
    return f"{state}, {episode.steps} steps"


def _decision(env, device, front, episode: Episode, report: CollectReport) -> str:
    """What to do with an episode: the operator's own event, else the front end's decision."""
    explicit = {"discard": "discard", "restart": "redo", "quit": "quit"}.get(episode.ended)
    if explicit:
        return explicit
    if episode.steps == 0:
        return "redo"
    decision = front.decide(env, device, episode, report)
    if decision not in DECISIONS:
        raise ValueError(f"decide() returned {decision!r}, expected one of {DECISIONS}")
    return decision


def _record_episode(env, device, recorder, seed, controller, front, report) -> Episode:
    """Run one episode into ``recorder`` (left open); returns how it went and how it ended."""
    obs = env.reset(seed=seed)
    device.start_episode(env, seed)
    if controller is not None:
        if front.paced:  # infer once before the operator starts, so the first step does not stall
            controller.act(obs, 0.0)
        controller.reset()
        if hasattr(controller.source, "start_episode"):  # e.g. the scripted expert standing in for a policy
            controller.source.start_episode(seed)
    recorder.start_episode(
        task=env.task.name, instruction=env.task.instruction, seed=int(seed), source=device.source
    )
    episode = Episode(seed=int(seed))
    if not front.ready(env, device, obs, episode, report):
        episode.ended = "quit"
        return episode
    for step in range(env.horizon):
        now = front.tick()
        command = device.poll(env, obs)
        event = command.event or front.event()
        if event in ("finish", "discard", "restart", "quit"):
            episode.ended = event
            return episode
        action, intervention = command.action, controller is not None and command.active
        if controller is not None and not command.active:
            action = controller.act(obs, step * env.dt).action
        data = {**obs, "action": np.asarray(action, dtype=np.float32)}
        obs, truncated = episode.record_and_step(
            env, recorder, step, data, action, intervention, now, front, report, command
        )
        if episode.ended == "success":
            return episode
        if truncated:
            break
    episode.ended = "timeout"
    return episode
