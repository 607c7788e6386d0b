"""Corrections with rewind (RaC-style): a policy drives, a watcher intervenes before it fails, recovery then correction.

``manip collect --policy CKPT --corrections --device D`` records episodes in three phases (per-step key ``phase``,
int8: :data:`POLICY` 0, :data:`RECOVERY` 1, :data:`CORRECTION` 2; ``intervention`` is True for 1 and 2):

1. **policy** — the policy drives through the ordinary chunk loop. The device is polled every tick through the
   usual :class:`~manip.sim.devices.base.Device` interface: a person takes over by moving (``command.active``); the
   scripted expert shadows the rollout (its plan follows the sim) and :class:`FailureWatch` intervenes when the
   policy's motion diverges from the expert's (mean position-command distance over a window above a threshold) or
   when the expert's plan stops progressing (no phase completed for ``stall_steps`` ticks).
2. **recovery** — :class:`Rewind` retraces the end-effector's last ``rewind_steps`` positions backwards (with the
   gripper command the policy gave at each), bringing the arm back toward states the policy had reached before it
   went wrong (``rewind_steps`` 0: none). Training on these steps can teach the policy to back away from states
   where going on was right (on Square it cost 58 points of 200: docs/RESULTS.md); ``data.drop_recovery_steps``
   leaves them out.
3. **correction** — the device drives: the scripted expert re-plans from the current state, starts at the subtask
   the policy was failing at (or at the latest check before it, e.g. "the nut is in the hand", so a held object is
   not let go; ``resumed_at`` in the metadata) and runs until it has finished that subtask, or until success
   (``until_success``: through the rest of the task, HG-DAgger style); a person drives until they let go for
   ``release_ticks`` ticks. The episode ends after the correction, as in RaC.

Every kept episode's metadata says what happened: ``corrections``, ``intervened``, ``trigger`` (``divergence``,
``stall`` or ``operator``), ``intervention_step``, ``recovery_steps``, ``correction_steps``, ``failure_phase`` and
``policy`` (the checkpoint id). Unattended collection keeps episodes with an intervention and successful ones
(only the former with ``--corrected-only``).
Training weights or filters by the flags: ``data.intervention_weight`` / ``data.only_interventions``; the policy's
and the recovery's steps can be left out (``data.drop_policy_steps`` / ``data.drop_recovery_steps``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from manip.data.recorder import CORRECTION_PHASE as CORRECTION
from manip.data.recorder import PHASE as PHASE_KEY
from manip.data.recorder import POLICY_PHASE as POLICY
from manip.data.recorder import RECOVERY_PHASE as RECOVERY
from manip.sim.collect import Episode, Unattended
from manip.sim.experts.base import Sim

PHASE_NAMES = {POLICY: "policy", RECOVERY: "recovery", CORRECTION: "correction"}


@dataclass(frozen=True)
class CorrectionSettings:
    """When to intervene, how far to rewind and when a correction is over."""

    divergence: float = 0.5
    """Mean distance between the policy's and the expert's position commands (action units) that intervenes."""
    window: int = 10
    """Ticks the divergence is averaged over."""
    stall_steps: int = 80
    """Ticks without the expert's plan completing a phase that count as a stall."""
    stall_motion: float = 0.0
    """When > 0, a stall also needs the end effector to have moved less than this many metres (net) over the last
    ``stall_window`` ticks, so a policy still on its way, only slower than the expert's plan, is not stopped."""
    stall_window: int = 20
    min_policy_steps: int = 10
    """The policy drives at least this many ticks before the watcher may intervene."""
    rewind_steps: int = 20
    """How many of the latest end-effector positions the recovery retraces (backwards); 0: no recovery."""
    rewind_stride: int = 4
    """Retrace every ``rewind_stride``-th of them."""
    rewind_tol: float = 0.01
    """A retraced position counts as reached within this many metres."""
    rewind_max_steps: int = 60
    correction_max_steps: int = 300
    release_ticks: int = 10
    """A person's correction ends after this many ticks without input."""
    until_success: bool = False
    """The scripted correction goes on through the rest of the task until it succeeds (HG-DAgger style), or until
    ``correction_max_steps`` or the horizon, instead of ending once the failed subtask is done."""


class FailureWatch:
    """Decides, tick by tick while the policy drives, whether (and why) to intervene."""

    def __init__(self, settings: CorrectionSettings, device):
        self.settings = settings
        self.expert = getattr(device, "expert", None) if not device.human else None
        self.human = device.human
        self.gaps: deque[float] = deque(maxlen=settings.window)
        self.steps = 0
        self.last_index, self.since_progress = -1, 0
        self.positions: deque[np.ndarray] = deque(maxlen=settings.stall_window + 1)

    def update(self, command, policy_action: np.ndarray, eef_pos: np.ndarray | None = None) -> str | None:
        """The trigger (``operator``, ``divergence``, ``stall``) for this tick, or None (``eef_pos``: the end
        effector's position, which ``stall_motion`` needs)."""
        self.steps += 1
        if self.human:
            return "operator" if command.active else None
        self.gaps.append(
            float(np.linalg.norm(np.asarray(command.action)[:3] - np.asarray(policy_action)[:3]))
        )
        if eef_pos is not None:
            self.positions.append(np.asarray(eef_pos, dtype=np.float64))
        index = getattr(self.expert, "index", None)
        if index != self.last_index:
            self.last_index, self.since_progress = index, 0
        else:
            self.since_progress += 1
        if self.steps < self.settings.min_policy_steps:
            return None
        if len(self.gaps) == self.gaps.maxlen and np.mean(self.gaps) > self.settings.divergence:
            return "divergence"
        if self.since_progress >= self.settings.stall_steps and self._not_moving():
            return "stall"
        return None

    def _not_moving(self) -> bool:
        """Whether the end effector moved less than ``stall_motion`` over the last ``stall_window`` ticks (always
        true when ``stall_motion`` is 0)."""
        if self.settings.stall_motion <= 0:
            return True
        if len(self.positions) < self.positions.maxlen:
            return False
        return float(np.linalg.norm(self.positions[-1] - self.positions[0])) < self.settings.stall_motion

    @property
    def phase_name(self) -> str | None:
        """The expert's current phase (what the policy was doing when it failed), when known."""
        return getattr(self.expert, "phase", None) if self.expert is not None else None


class Rewind:
    """Retrace recorded end-effector positions backwards: one 7-D OSC_POSE-delta action per tick, None when done.

    ``trail``: ``(position (3,), gripper command)`` per policy tick, oldest first; the last ``rewind_steps`` of them
    are visited newest to oldest, every ``rewind_stride``-th, holding each one's gripper command.
    """

    gain = 20.0  # action per metre of error, as the scripted experts use

    def __init__(self, trail: list[tuple[np.ndarray, float]], settings: CorrectionSettings, action_dim: int):
        recent = trail[len(trail) - settings.rewind_steps :][::-1] if settings.rewind_steps > 0 else []
        self.targets = recent[settings.rewind_stride - 1 :: settings.rewind_stride] or recent[-1:]
        if recent and self.targets[-1] is not recent[-1]:
            self.targets.append(recent[-1])  # always end at the oldest retraced position
        self.settings, self.action_dim = settings, action_dim
        self.index, self.steps = 0, 0

    @property
    def goal(self) -> np.ndarray | None:
        """The oldest position the rewind returns to."""
        return self.targets[-1][0] if self.targets else None

    def act(self, sim: Sim) -> np.ndarray | None:
        """The next action toward the current target, or None once the last one is reached (or time is up)."""
        eef = sim.eef_pos()
        while self.index < len(self.targets) and (
            np.linalg.norm(self.targets[self.index][0] - eef) < self.settings.rewind_tol
        ):
            self.index += 1
        if self.index >= len(self.targets) or self.steps >= self.settings.rewind_max_steps:
            return None
        self.steps += 1
        position, gripper = self.targets[self.index]
        move = np.clip((position - eef) * self.gain, -1.0, 1.0)
        action = np.zeros(self.action_dim, np.float32)
        action[:3] = sim.base_mat().T @ move
        action[6] = gripper
        return action


class CorrectionsUnattended(Unattended):
    """Scripted corrections keep every episode with an intervention, and successful ones unless
    ``corrected_only`` (then a policy rollout that needed no correction is not kept)."""

    def __init__(self, keep_failures: bool = False, quiet: bool = False, corrected_only: bool = False):
        super().__init__(keep_failures, quiet)
        self.corrected_only = corrected_only

    def decide(self, env, device, episode: Episode, report) -> str:
        intervened = bool(episode.meta.get("intervened"))
        keep = intervened or (episode.success and not self.corrected_only) or self.keep_failures
        return "keep" if keep else "discard"


def record_correction_episode(
    env, device, recorder, seed, controller, front, report, settings: CorrectionSettings | None = None
) -> Episode:
    """Run one corrections episode into ``recorder`` (left open); the same contract as
    :func:`manip.sim.collect.collect`'s episode runner (see the module docstring for the phases)."""
    settings = settings or CorrectionSettings()
    obs = env.reset(seed=seed)
    device.start_episode(env, seed)
    if front.paced:  # infer once before the operator starts, so the first step does not stall
        controller.act(obs, 0.0)
    controller.reset()
    policy_id = controller.source.metadata.checkpoint_id
    recorder.start_episode(
        task=env.task.name, instruction=env.task.instruction, seed=int(seed), source=device.source,
        corrections=True, policy=policy_id,
    )  # fmt: skip
    episode = Episode(seed=int(seed))
    episode.meta.update(intervened=False, trigger=None, intervention_step=None, failure_phase=None)
    if not front.ready(env, device, obs, episode, report):
        episode.ended = "quit"
        return episode
    sim, watch = Sim(env), FailureWatch(settings, device)
    trail: list[tuple[np.ndarray, float]] = []
    phase, rewind, counts = POLICY, None, {RECOVERY: 0, CORRECTION: 0}
    failure_phase, idle, touched = None, 0, False
    for step in range(env.horizon):
        now = front.tick()
        command = device.poll(env, obs)
        event = command.event or front.event()
        if event in ("finish", "discard", "restart", "quit"):
            episode.ended = event
            return episode
        action = None
        if phase == POLICY:
            action = np.asarray(controller.act(obs, step * env.dt).action, dtype=np.float32)
            eef = sim.eef_pos()
            trigger = watch.update(command, action, eef)
            if trigger is None:
                trail.append((eef, float(action[6])))
            else:
                failure_phase = watch.phase_name
                episode.meta.update(
                    intervened=True, trigger=trigger, intervention_step=step, failure_phase=failure_phase,
                    rewind_goal=None,
                )  # fmt: skip
                phase, rewind = RECOVERY, Rewind(trail, settings, env.action_dim)
                if rewind.goal is not None:
                    episode.meta["rewind_goal"] = [float(v) for v in rewind.goal]
        if phase == RECOVERY:
            action = rewind.act(sim)
            if action is None:
                phase = CORRECTION
                if not device.human:  # the expert re-plans from here, at the subtask the policy failed
                    device.start_episode(env, seed)
                    if failure_phase is not None and hasattr(device.expert, "resume_at"):
                        episode.meta["resumed_at"] = device.expert.resume_at(failure_phase)
                    command = device.poll(env, obs)
        if phase == CORRECTION:
            action = np.asarray(command.action, dtype=np.float32)
            touched = touched or command.active
            idle = 0 if command.active or not touched else idle + 1  # counts once the operator has driven
        counts[phase] = counts.get(phase, 0) + 1
        data = {**obs, "action": action, PHASE_KEY: np.int8(phase)}
        obs, truncated = episode.record_and_step(
            env, recorder, step, data, action, phase != POLICY, now, front, report, command
        )
        if episode.ended == "success":
            break
        if phase == CORRECTION and _correction_over(
            device, failure_phase, counts[CORRECTION], idle, settings
        ):
            episode.ended = "corrected"
            break
        if truncated:
            episode.ended = "timeout"
            break
    episode.ended = episode.ended or "timeout"
    episode.meta.update(recovery_steps=counts[RECOVERY], correction_steps=counts[CORRECTION])
    return episode


def _correction_over(device, failure_phase, steps: int, idle: int, settings: CorrectionSettings) -> bool:
    """Whether the correction has done its job: the subtask is finished (scripted), the operator let go, or time."""
    if steps >= settings.correction_max_steps:
        return True
    if device.human:
        return idle >= settings.release_ticks
    if settings.until_success:
        return False  # the episode ends at success, or at the horizon
    expert = getattr(device, "expert", None)
    names = [p.name for p in getattr(expert, "phases", [])]
    if failure_phase not in names:
        return False
    return expert.index > names.index(failure_phase)
