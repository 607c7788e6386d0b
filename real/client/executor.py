"""ChunkExecutor: turns timed action chunks into one safe action per control tick (numpy only).

Timing (docs/ARCHITECTURE.md "Time and chunks"): a chunk predicted from the observation taken at ``t_obs``
holds actions for ``anchor + (i + action_offset)·dt``, i = 0..H-1. The anchor is ``t_obs`` in the
``ensemble``, ``async`` and ``rtc`` modes (the robot kept moving while the chunk was computed, so actions whose
time has passed are dropped) and the arrival time in ``receding`` mode (synchronous: the robot held still while
waiting, so the chunk starts at its first action).

Modes:
- ``receding``: execute ``n_action_steps`` actions of a chunk, then hold until the next one arrives.
- ``ensemble``: ACT temporal ensembling; request every ``ensemble_every`` ticks and average every chunk's
  action for the current time with weights ``exp(-k·i)``, i = 0 for the oldest chunk.
- ``async``: request the next chunk while executing, early enough (measured latency) that it arrives before
  action ``n_action_steps`` of the current chunk; keep executing the current chunk until it does.
- ``rtc``: as ``async``, and :meth:`ChunkExecutor.rtc_prefix` gives the actions that will execute while the
  new chunk is computed; the policy holds them fixed and inpaints the rest, so chunks join without a jump.
- ``adaptive``: ``async`` while the latency estimate is at most ``adaptive_max_latency_steps`` ticks, ``receding``
  (the robot waits for each chunk) above it. Decided per chunk on arrival. The delay sweep in docs/RESULTS.md is
  why: executing from an observation many ticks old fails where waiting does not.

Every action passes :class:`manip.real.client.safety.SafetyFilter`; when there is no usable action the executor holds and
says why (:class:`ExecutorAction.reason`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from manip.core.checked import Checked, setting
from manip.core.errors import ManipError
from manip.real.client.latency import LatencyEstimator
from manip.real.client.safety import SafetyConfig, SafetyFilter

MODES = ("receding", "ensemble", "async", "rtc", "adaptive")

# Hold reasons (fixed strings so they can be counted).
NO_CHUNK = "no chunk yet"
WAITING = "waiting for the next chunk"
EXHAUSTED = "chunk exhausted"
NOT_STARTED = "chunk starts later"
STALE_OBS = "stale observation"
NO_FRESH_CHUNK = "no fresh chunk"


@dataclass(frozen=True)
class ExecutorConfig(Checked):
    """How chunks become actions; see the module docstring for the modes."""

    mode: str = setting("receding", choices=MODES)
    control_rate: float = setting(20.0, gt=0)
    """Control ticks per second (dt = 1 / control_rate)."""
    n_action_steps: int = setting(8, ge=1)
    """Actions executed from each chunk before switching to the next (receding, async, rtc)."""
    action_offset: int = 0
    """Action i of a chunk is for time anchor + (i + action_offset)·dt."""
    ensemble_k: float = setting(0.01, ge=0)
    """ACT's exponential weight decay (weights exp(-k·i), i = 0 oldest)."""
    ensemble_every: int = setting(1, ge=1)
    """Ensemble mode requests a chunk every this many ticks."""
    request_margin_steps: float = setting(0.0, ge=0)
    """Async/rtc: request this many ticks earlier than the latency estimate alone says."""
    latency_estimate: str = setting("quantile", choices=("ewma", "quantile"))
    latency_quantile: float = setting(0.9, ge=0, le=1)
    latency_ewma_alpha: float = setting(0.2, gt=0, le=1)
    initial_latency_s: float = setting(0.0, ge=0)
    """Latency assumed before the first chunk is measured."""
    request_timeout_s: float = setting(5.0, gt=0)
    """A request with no answer after this long counts as lost (a new one may be sent)."""
    adaptive_max_latency_steps: float = setting(5.0, ge=0)
    """Adaptive mode: run asynchronously up to this latency estimate (ticks), wait for each chunk above it."""
    safety: SafetyConfig = field(default_factory=SafetyConfig)


@dataclass(frozen=True)
class TimedChunk:
    """A chunk with its timing: action i is for ``anchor + (i + offset)·dt``."""

    actions: np.ndarray
    t_obs: float
    t_received: float
    anchor: float
    waits: bool = False
    """Executed synchronously: ``n_action_steps`` actions from its first, then hold for the next chunk."""

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])

    def index_at(self, t: float, dt: float, offset: int) -> int:
        """Index of the action meant for time ``t`` (may be < 0 or >= horizon)."""
        return round((t - self.anchor) / dt) - offset


@dataclass(frozen=True)
class ExecutorAction:
    """One tick's output: the (safe) ``action``, whether it is a hold, and why."""

    action: np.ndarray
    held: bool
    reason: str = ""
    t_obs: float | None = None
    """Observation time of the chunk the action came from (None for a hold)."""


class ChunkExecutor:
    """Chunks in (:meth:`push_chunk`), one action per tick out (:meth:`act`); see the module docstring."""

    def __init__(self, config: ExecutorConfig | None = None, action_dim: int | None = None):
        self.config = config or ExecutorConfig()
        self.dt = 1.0 / self.config.control_rate
        self.action_dim = action_dim
        self.safety = SafetyFilter(self.config.safety, action_dim) if action_dim else None
        self.reset()

    def reset(self) -> None:
        """Start over (new episode): forget chunks, in-flight requests and the last action; keep latency stats."""
        if not hasattr(self, "latency"):
            c = self.config
            self.latency = LatencyEstimator(
                c.latency_estimate, c.latency_quantile, c.latency_ewma_alpha, c.initial_latency_s
            )
        self.chunks: list[TimedChunk] = []
        self.request_time: float | None = None
        self.last_request_time: float | None = None
        self.last_received: float | None = None
        self.stats: Counter = Counter()
        if self.safety is not None:
            self.safety.reset()

    def set_action_dim(self, action_dim: int) -> None:
        """Fix the action size (so holds before the first chunk have the right shape); later calls are no-ops."""
        if self.action_dim is None:
            self.action_dim = int(action_dim)
            self.safety = SafetyFilter(self.config.safety, self.action_dim)

    # -- requests ---------------------------------------------------------------------------------------------
    @property
    def current(self) -> TimedChunk | None:
        """The newest chunk (the one executing, except in ensemble mode where all overlapping chunks count)."""
        return self.chunks[-1] if self.chunks else None

    def in_flight(self, t_now: float) -> bool:
        """True while a request sent with :meth:`request_sent` is unanswered and not timed out."""
        return self.request_time is not None and t_now - self.request_time < self.config.request_timeout_s

    def request_sent(self, t_now: float) -> None:
        """Note that a chunk was requested at ``t_now`` (with the observation taken then)."""
        self.request_time = self.last_request_time = float(t_now)
        self.stats["requests"] += 1

    def request_failed(self) -> None:
        """Note that the in-flight request will not be answered (a new one may be sent at once)."""
        self.request_time = None
        self.stats["failed requests"] += 1

    @property
    def switch_index(self) -> int:
        """Chunk index where the next chunk should take over: ``n_action_steps`` after the action for the
        observation time (index ``-action_offset``, or 0 when the chunk starts later)."""
        return max(0, -self.config.action_offset) + self.config.n_action_steps

    def needs_chunk(self, t_now: float) -> bool:
        """Whether to request a new chunk now (with an observation taken at ``t_now``)."""
        if self.in_flight(t_now):
            return False
        cur = self.current
        if cur is None:
            return True
        c = self.config
        if cur.waits:
            return cur.index_at(t_now, self.dt, c.action_offset) >= self.switch_index
        if c.mode == "ensemble":
            last = self.last_request_time if self.last_request_time is not None else cur.t_obs
            return (t_now - last) / self.dt >= c.ensemble_every - 1e-6
        switch_time = cur.anchor + (self.switch_index + c.action_offset) * self.dt
        return t_now + self.latency.estimate() + c.request_margin_steps * self.dt >= switch_time - 1e-9

    def push_chunk(self, chunk: np.ndarray, t_obs: float, t_received: float | None = None) -> None:
        """Add a chunk ``(H, A)`` predicted from the observation at ``t_obs``, arrived at ``t_received``.

        ``t_received`` defaults to ``t_obs`` (no latency). A chunk older than the newest one is ignored.
        """
        actions = np.array(chunk, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[0] < 1:
            raise ManipError(f"executor: a chunk must have shape (horizon, action_dim), got {actions.shape}")
        self.set_action_dim(int(actions.shape[1]))
        if actions.shape[1] != self.action_dim:
            raise ManipError(f"executor: chunk has action dim {actions.shape[1]}, expected {self.action_dim}")
        t_obs = float(t_obs)
        t_received = t_obs if t_received is None else float(t_received)
        self.request_time = None
        self.latency.add(t_received - t_obs)
        if self.current is not None and t_obs < self.current.t_obs:
            self.stats["out-of-order chunks ignored"] += 1
            return
        waits = self._waits_for_chunks()
        timed = TimedChunk(actions, t_obs, t_received, t_received if waits else t_obs, waits)
        self.stats["chunks"] += 1
        self.stats["dropped actions"] += max(
            0, timed.index_at(t_received, self.dt, self.config.action_offset)
        )
        self.last_received = t_received
        if self.config.mode == "ensemble":
            self.chunks.append(timed)
            self.chunks = [
                ch
                for ch in self.chunks
                if ch.index_at(t_received, self.dt, self.config.action_offset) < ch.horizon
            ]
        else:
            self.chunks = [timed]

    # -- actions ----------------------------------------------------------------------------------------------
    def act(self, t_now: float) -> ExecutorAction:
        """The action for the control tick at ``t_now`` (a hold, with its reason, when there is none)."""
        if self.safety is None or not self.chunks:
            return self._hold(NO_CHUNK)
        gap = self.config.safety.max_chunk_gap_s
        if gap is not None and self.last_received is not None and t_now - self.last_received > gap:
            return self._hold(NO_FRESH_CHUNK)
        if self.config.mode == "ensemble":
            action, t_obs, reason = self._ensembled(t_now)
        else:
            action, t_obs, reason = self._from_current(t_now)
        if action is None:
            return self._hold(reason)
        age = self.config.safety.max_obs_age_s
        if age is not None and t_now - t_obs > age:
            return self._hold(STALE_OBS)
        safe = self.safety.apply(action)
        if safe.held:
            self.stats[f"hold: {safe.reason}"] += 1
            return ExecutorAction(safe.action, True, safe.reason)
        self.stats["actions"] += 1
        return ExecutorAction(safe.action, False, "", t_obs)

    def _from_current(self, t_now: float):
        cur, c = self.current, self.config
        i = cur.index_at(t_now, self.dt, c.action_offset)
        if i < 0:
            return None, None, NOT_STARTED
        if cur.waits and i >= self.switch_index:
            return None, None, WAITING
        if i >= cur.horizon:
            return None, None, EXHAUSTED
        return cur.actions[i], cur.t_obs, ""

    def _ensembled(self, t_now: float):
        offset = self.config.action_offset
        rows, newest = [], None
        for ch in self.chunks:  # oldest first
            i = ch.index_at(t_now, self.dt, offset)
            if 0 <= i < ch.horizon:
                rows.append(ch.actions[i])
                newest = ch.t_obs
        if not rows:
            return None, None, EXHAUSTED
        weights = np.exp(-self.config.ensemble_k * np.arange(len(rows)))
        return (weights[:, None] * np.stack(rows)).sum(0) / weights.sum(), newest, ""

    def _waits_for_chunks(self) -> bool:
        """Whether the next chunk runs synchronously (receding; adaptive above its latency limit)."""
        c = self.config
        if c.mode == "adaptive":
            return self.latency.estimate() > c.adaptive_max_latency_steps * self.dt + 1e-9
        return c.mode == "receding"

    def _hold(self, reason: str) -> ExecutorAction:
        self.stats[f"hold: {reason}"] += 1
        if self.safety is None:
            return ExecutorAction(np.zeros(self.action_dim or 0), True, reason)
        return ExecutorAction(self.safety.hold(reason).action, True, reason)

    # -- real-time chunking -----------------------------------------------------------------------------------
    def prefix_length(self, latency: float) -> int:
        """How many actions of a chunk requested now execute before it arrives ``latency`` seconds later."""
        return max(0, math.ceil(latency / self.dt - self.config.action_offset - 1e-6))

    def rtc_prefix(self, t_now: float, latency: float | None = None) -> np.ndarray | None:
        """The actions ``(P, A)`` of the current chunk that will execute while a chunk requested at ``t_now``
        is computed (``latency`` defaults to the estimate); None when there are none.

        They are the new chunk's first P actions; the policy holds them fixed (``predict_chunk(prefix=)``).
        """
        cur = self.current
        if cur is None:
            return None
        latency = self.latency.estimate() if latency is None else latency
        count = min(self.prefix_length(latency), cur.horizon - 1)
        start = max(0, round((t_now - cur.anchor) / self.dt))  # new chunk's index 0 in the current one
        prefix = cur.actions[start : start + count]
        return prefix.copy() if len(prefix) else None
