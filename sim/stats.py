"""Small statistics for evaluation results."""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default); (0, 1) for zero trials."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # Exact at the ends (1.0, not 0.9999999999999999, when every trial succeeded).
    low = 0.0 if successes <= 0 else max(0.0, centre - half)
    high = 1.0 if successes >= trials else min(1.0, centre + half)
    return low, high


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    """min / p50 / p99 / mean of durations given in seconds, in milliseconds rounded to 1 µs (0 when none)."""
    if not len(seconds):
        return {"min": 0.0, "p50": 0.0, "p99": 0.0, "mean": 0.0}
    ms = np.asarray(seconds, dtype=float) * 1e3
    figures = {"min": ms.min(), "p50": np.percentile(ms, 50), "p99": np.percentile(ms, 99), "mean": ms.mean()}
    return {name: round(float(value), 3) for name, value in figures.items()}
