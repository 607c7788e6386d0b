"""Safety filter applied to every action the executor emits (numpy only).

Per-dimension clamps, a per-tick rate limit, and *holds*: when an action is non-finite, or the executor has no
usable chunk, the filter emits a hold action instead and says why. A hold either repeats the last safe action
(absolute targets: stay where you are) or sends zeros (delta control: stop moving), optionally keeping some
dimensions (the gripper) at their last value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from manip.core.checked import Checked, setting
from manip.core.errors import ManipError


@dataclass(frozen=True)
class SafetyConfig(Checked):
    """Limits applied to every action; ``None`` turns a check off."""

    low: list[float] | None = None
    """Per-dimension lower clamp (length = action dim)."""
    high: list[float] | None = None
    """Per-dimension upper clamp (length = action dim)."""
    max_delta: float | list[float] | None = setting(None, ge=0)
    """Largest change of each dimension from one tick to the next (a scalar applies to every dimension)."""
    hold: str = setting("zero", choices=("zero", "repeat"))
    """What a hold sends: zeros (delta control) or the last safe action again (absolute targets)."""
    hold_keep: list[int] = setting([])
    """With ``hold="zero"``: dimensions that keep their last value (e.g. ``[6]`` for a gripper)."""
    max_obs_age_s: float | None = setting(2.0, gt=0)
    """Hold when the action comes from an observation older than this (seconds)."""
    max_chunk_gap_s: float | None = setting(2.0, gt=0)
    """Hold when no fresh chunk has arrived for this long (seconds)."""


@dataclass(frozen=True)
class SafeAction:
    """What the filter decided for one tick."""

    action: np.ndarray
    held: bool
    reason: str = ""


class SafetyFilter:
    """Stateful per-tick filter: remembers the last action it let through (for rate limits and holds)."""

    def __init__(self, config: SafetyConfig, action_dim: int):
        self.config = config
        self.action_dim = int(action_dim)
        self.low = self._vector(config.low, "low")
        self.high = self._vector(config.high, "high")
        self.max_delta = self._vector(config.max_delta, "max_delta")
        if self.low is not None and self.high is not None and np.any(self.low > self.high):
            raise ManipError("safety: low is above high in some dimension")
        if self.max_delta is not None and np.any(self.max_delta < 0):
            raise ManipError("safety: max_delta must be >= 0")
        bad = [d for d in config.hold_keep if not 0 <= d < self.action_dim]
        if bad:
            raise ManipError(f"safety: hold_keep dimension(s) {bad} outside 0..{self.action_dim - 1}")
        self.last: np.ndarray | None = None

    def _vector(self, value, name: str) -> np.ndarray | None:
        if value is None:
            return None
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(self.action_dim, float(arr))
        if arr.shape != (self.action_dim,):
            raise ManipError(
                f"safety: '{name}' has {arr.size} values, the action has {self.action_dim} dimensions"
            )
        return arr

    def reset(self) -> None:
        """Forget the last action (start of an episode)."""
        self.last = None

    def hold(self, reason: str) -> SafeAction:
        """Emit the hold action, with ``reason`` saying why."""
        if self.last is None:
            action = np.zeros(self.action_dim)
        elif self.config.hold == "repeat":
            action = self.last.copy()
        else:
            action = np.zeros(self.action_dim)
            keep = list(self.config.hold_keep)
            action[keep] = self.last[keep]
        action = self._clamp(action)
        self.last = action
        return SafeAction(action.copy(), True, reason)

    def apply(self, action: np.ndarray) -> SafeAction:
        """Clamp and rate-limit ``action``; a non-finite or wrongly sized action becomes a hold."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (self.action_dim,):
            return self.hold(f"action has {action.size} values, expected {self.action_dim}")
        if not np.isfinite(action).all():
            return self.hold("non-finite action (NaN or inf)")
        action = self._clamp(action)
        if self.max_delta is not None and self.last is not None:
            action = np.clip(action, self.last - self.max_delta, self.last + self.max_delta)
            action = self._clamp(action)
        self.last = action
        return SafeAction(action.copy(), False, "")

    def _clamp(self, action: np.ndarray) -> np.ndarray:
        if self.low is not None or self.high is not None:
            action = np.clip(action, self.low, self.high)
        return action
