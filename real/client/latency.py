"""Latency: measuring it (EWMA and a windowed quantile) and injecting it (fixed + jittered delay). Numpy only."""

from __future__ import annotations

from collections import deque

import numpy as np

from manip.core.errors import ManipError


class LatencyEstimator:
    """Running estimate of how long a chunk takes to arrive after its observation was taken.

    Keeps an exponentially weighted mean and the last ``window`` samples; :meth:`estimate` returns the chosen
    statistic (``"ewma"`` or ``"quantile"``), or ``initial`` before the first sample.
    """

    def __init__(
        self,
        method: str = "quantile",
        quantile: float = 0.9,
        alpha: float = 0.2,
        initial: float = 0.0,
        window: int = 64,
    ):
        if method not in ("ewma", "quantile"):
            raise ManipError(f"latency estimate '{method}' is not one of ewma, quantile")
        self.method, self.quantile, self.alpha, self.initial = (
            method,
            float(quantile),
            float(alpha),
            float(initial),
        )
        self.samples: deque[float] = deque(maxlen=int(window))
        self.ewma: float | None = None

    def add(self, seconds: float) -> None:
        """Record one measured latency (negative values, from clock skew, count as zero)."""
        seconds = max(0.0, float(seconds))
        self.samples.append(seconds)
        self.ewma = seconds if self.ewma is None else (1 - self.alpha) * self.ewma + self.alpha * seconds

    def percentile(self, q: float) -> float:
        """The ``q``-quantile (0..1) of the recent samples, or ``initial`` with none yet."""
        return float(np.quantile(np.fromiter(self.samples, float), q)) if self.samples else self.initial

    def estimate(self) -> float:
        """The latency to plan with (seconds)."""
        if not self.samples:
            return self.initial
        return float(self.ewma) if self.method == "ewma" else self.percentile(self.quantile)


class InjectedDelay:
    """A simulated delay per request: ``fixed_s`` plus uniform jitter in ``[0, jitter_s]``, seeded."""

    def __init__(self, fixed_s: float = 0.0, jitter_s: float = 0.0, seed: int = 0):
        if fixed_s < 0 or jitter_s < 0:
            raise ManipError(f"delay must be >= 0 (got fixed {fixed_s} s, jitter {jitter_s} s)")
        self.fixed_s, self.jitter_s = float(fixed_s), float(jitter_s)
        self.rng = np.random.default_rng(seed)

    def sample(self) -> float:
        """Seconds to add to the next request."""
        return self.fixed_s + (float(self.rng.uniform(0.0, self.jitter_s)) if self.jitter_s > 0 else 0.0)
