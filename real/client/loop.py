"""The per-tick control loop shared by sim eval and tests: observation history → ChunkSource → ChunkExecutor.

:class:`ChunkedController` runs in *simulated* time (the caller passes ``t_now`` of each control tick): a
request is computed at once, and with an :class:`manip.real.client.latency.InjectedDelay` its chunk is delivered to the
executor only when the simulated clock reaches ``t_obs + delay``; meanwhile the executor keeps acting (async,
rtc) or holds (receding). With no delay the result is the same as a blocking loop. Numpy only.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping

import numpy as np

from manip.core.errors import ManipError
from manip.real.client.executor import ChunkExecutor, ExecutorAction, ExecutorConfig
from manip.real.client.latency import InjectedDelay
from manip.real.client.sources import ChunkSource, SourceMetadata, SourceUnavailable


def executor_config_for(meta: SourceMetadata, **overrides) -> ExecutorConfig:
    """An :class:`ExecutorConfig` with the source's control rate, ``n_action_steps`` and action offset."""
    values = {
        "control_rate": meta.control_rate,
        "n_action_steps": meta.n_action_steps,
        "action_offset": meta.action_offset,
        **overrides,
    }
    return ExecutorConfig(**values)


class ObsHistory:
    """The last ``n_obs_steps`` observations as windows ``{key: (n_obs_steps, ...)}``.

    At the start of an episode the first observation is repeated (Diffusion Policy's padding).
    """

    def __init__(self, n_obs_steps: int, keys: list[str] | None = None):
        if n_obs_steps < 1:
            raise ManipError(f"n_obs_steps must be >= 1, got {n_obs_steps}")
        self.n_obs_steps = int(n_obs_steps)
        self.keys = list(keys) if keys is not None else None
        self.steps: deque[dict[str, np.ndarray]] = deque(maxlen=self.n_obs_steps)

    def reset(self) -> None:
        """Forget all observations (new episode)."""
        self.steps.clear()

    def push(self, obs: Mapping[str, np.ndarray]) -> None:
        """Add one step's observation (only ``keys`` are kept when given)."""
        keys = self.keys if self.keys is not None else list(obs)
        missing = [k for k in keys if k not in obs]
        if missing:
            raise ManipError(f"observation is missing key(s) {', '.join(missing)}")
        step = {k: np.asarray(obs[k]) for k in keys}
        if not self.steps:
            self.steps.extend([step] * (self.n_obs_steps - 1))
        self.steps.append(step)

    def window(self) -> dict[str, np.ndarray]:
        """The stacked window; empty before the first :meth:`push`."""
        if not self.steps:
            return {}
        return {k: np.stack([s[k] for s in self.steps]) for k in self.steps[-1]}


class ChunkedController:
    """Drive a :class:`ChunkExecutor` from a :class:`ChunkSource` in simulated time, with optional delay.

    ``act(obs, t_now)`` takes one step's raw observation and returns the tick's :class:`ExecutorAction`.
    ``request_seconds`` lists the wall time of every ``source.request`` call (the policy/round-trip time).
    """

    def __init__(
        self,
        source: ChunkSource,
        executor: ChunkExecutor | ExecutorConfig | None = None,
        delay: InjectedDelay | None = None,
        instruction: str | None = None,
    ):
        self.source = source
        meta = source.metadata
        if not isinstance(executor, ChunkExecutor):
            executor = ChunkExecutor(executor or executor_config_for(meta))
        self.executor = executor
        executor.set_action_dim(meta.action_dim)
        self.delay = delay
        self.instruction = instruction
        self.history = ObsHistory(meta.n_obs_steps, keys=meta.obs_spec.names or None)
        self.request_seconds: list[float] = []
        self.last_error = ""
        self.pending: list[tuple[float, float, np.ndarray]] = []  # (arrival time, t_obs, chunk)

    def reset(self) -> None:
        """New episode: clear history, pending chunks and the executor."""
        self.history.reset()
        self.pending.clear()
        self.executor.reset()

    def act(self, obs: Mapping[str, np.ndarray], t_now: float) -> ExecutorAction:
        """Record ``obs`` (taken at ``t_now``), request a chunk when the executor needs one, return the action."""
        self.history.push(obs)
        self._deliver(t_now)
        if not self.pending and self.executor.needs_chunk(t_now):
            self._request(t_now)
            self._deliver(t_now)
        return self.executor.act(t_now)

    def _request(self, t_now: float) -> None:
        prefix = self.executor.rtc_prefix(t_now) if self.executor.config.mode == "rtc" else None
        start = time.perf_counter()
        try:
            chunk = self.source.request(
                self.history.window(), t_now, prefix=prefix, instruction=self.instruction
            )
        except SourceUnavailable as exc:  # hold and retry on a later tick
            self.executor.request_failed()
            self.last_error = str(exc)
            return
        self.request_seconds.append(time.perf_counter() - start)
        self.executor.request_sent(t_now)
        delay = self.delay.sample() if self.delay is not None else 0.0
        self.pending.append((t_now + delay, t_now, np.asarray(chunk)))

    def _deliver(self, t_now: float) -> None:
        due = [p for p in self.pending if p[0] <= t_now + 1e-9]
        self.pending = [p for p in self.pending if p[0] > t_now + 1e-9]
        for arrival, t_obs, chunk in sorted(due, key=lambda p: p[0]):
            self.executor.push_chunk(chunk, t_obs, t_received=arrival)
