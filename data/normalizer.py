"""Normalizer: per-feature affine maps fitted in one streaming pass, applied to numpy arrays or torch tensors.

Modes (``normalized = x * scale + offset`` elementwise over the feature's shape):

- ``minmax``: [min, max] → [-1, 1];
- ``meanstd``: zero mean, unit standard deviation;
- ``quantile``: [q_low, q_high] (default 1st and 99th percentiles) → [-1, 1], robust to outliers;
- ``image``: uint8 0..255 → [-1, 1] (fixed, needs no statistics);
- ``identity``: unchanged (the name and shape are still checked).

Ranges or deviations below :data:`RANGE_EPS` are floored: such a dimension is only centred (scale 1), so a
constant feature never blows up. Statistics come from one pass over the batches (min/max running, mean/var by
Chan's parallel update, quantiles from a seeded reservoir sample of at most :data:`RESERVOIR` rows: exact for
smaller datasets). The fitted maps serialize to plain JSON (``to_json``/``from_json``, ``save``/``load``).

Fail closed: a key the normalizer does not know, or a value whose trailing dimensions differ from the fitted
feature shape, raises :class:`~manip.core.errors.ManipError`; nothing ever passes through unnormalized.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from manip.core.errors import ManipError

MODES = ("minmax", "meanstd", "quantile", "image", "identity")
RANGE_EPS = 1e-4
RESERVOIR = 100_000
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FeatureNorm:
    """The fitted map of one feature: ``mode``, per-step ``shape``, ``scale``/``offset`` and summary ``stats``."""

    mode: str
    shape: tuple[int, ...]
    scale: np.ndarray
    offset: np.ndarray
    stats: dict

    def to_json(self) -> dict:
        return {
            "mode": self.mode,
            "shape": list(self.shape),
            "scale": self.scale.tolist(),
            "offset": self.offset.tolist(),
            "stats": self.stats,
        }


class _RunningStats:
    """One-pass statistics of rows ``(n, *shape)``: min, max, mean, variance and a reservoir for quantiles."""

    def __init__(self, shape: tuple[int, ...], seed: int):
        self.shape = shape
        self.count = 0
        self.min = np.full(shape, np.inf)
        self.max = np.full(shape, -np.inf)
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)
        self.reservoir = np.empty((0, *shape))
        self.rng = np.random.default_rng(seed)

    def update(self, rows: np.ndarray) -> None:
        n = rows.shape[0]
        if n == 0:
            return
        rows = rows.astype(np.float64)
        self.min = np.minimum(self.min, rows.min(axis=0))
        self.max = np.maximum(self.max, rows.max(axis=0))
        batch_mean = rows.mean(axis=0)
        batch_m2 = ((rows - batch_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + batch_m2 + delta**2 * (self.count * n / total)
        self._reserve(rows)
        self.count = total

    def _reserve(self, rows: np.ndarray) -> None:
        room = RESERVOIR - self.reservoir.shape[0]
        if room > 0:
            self.reservoir = np.concatenate([self.reservoir, rows[:room]])
            rows = rows[room:]
            seen = self.count + room
        else:
            seen = self.count
        if rows.shape[0] == 0:
            return
        # Algorithm R, vectorized: row j (0-based overall position p) replaces slot r < RESERVOIR with r ~ U[0, p].
        positions = seen + np.arange(rows.shape[0])
        slots = (self.rng.random(rows.shape[0]) * (positions + 1)).astype(np.int64)
        keep = slots < RESERVOIR
        self.reservoir[slots[keep]] = rows[keep]

    def summary(self, quantiles: tuple[float, float]) -> dict:
        std = np.sqrt(self.m2 / max(self.count, 1))
        low, high = np.quantile(self.reservoir, quantiles, axis=0)
        return {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": std,
            "q_low": low,
            "q_high": high,
        }


def _affine_from_range(low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map [low, high] to [-1, 1]; dimensions with a range below RANGE_EPS are only centred."""
    span = high - low
    tiny = span < RANGE_EPS
    scale = np.where(tiny, 1.0, 2.0 / np.where(tiny, 1.0, span))
    offset = np.where(tiny, -(low + high) / 2.0, -1.0 - scale * low)
    return scale, offset


def _feature_from_stats(mode: str, shape: tuple[int, ...], stats: dict, quantiles) -> FeatureNorm:
    if mode == "minmax":
        scale, offset = _affine_from_range(stats["min"], stats["max"])
    elif mode == "quantile":
        scale, offset = _affine_from_range(stats["q_low"], stats["q_high"])
    elif mode == "meanstd":
        std = np.where(stats["std"] < RANGE_EPS, 1.0, stats["std"])
        scale, offset = 1.0 / std, -stats["mean"] / std
    elif mode == "image":
        scale, offset = np.full(shape, 2.0 / 255.0), np.full(shape, -1.0)
    else:
        scale, offset = np.ones(shape), np.zeros(shape)
    summary = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in stats.items()}
    if mode == "quantile":
        summary["quantiles"] = list(quantiles)
    return FeatureNorm(mode, shape, np.asarray(scale, np.float32), np.asarray(offset, np.float32), summary)


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


class Normalizer:
    """Named per-feature normalization; see the module docstring."""

    def __init__(self, features: Mapping[str, FeatureNorm]):
        self.features = dict(features)

    # ---- fitting -------------------------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        batches: Iterable[Mapping[str, Any]],
        modes: Mapping[str, str],
        *,
        feature_ndims: Mapping[str, int] | None = None,
        quantiles: tuple[float, float] = (0.01, 0.99),
        seed: int = 0,
    ) -> Normalizer:
        """Fit ``modes`` (``{key: mode}``) in one pass over ``batches`` (dicts of arrays ``(..., *feature)``).

        A feature's shape is its last ``feature_ndims[key]`` dimensions (default 3 for ``image``, else 1);
        leading dimensions (batch, time) are pooled. Keys in the batches without a mode are ignored.
        """
        unknown = {k: m for k, m in modes.items() if m not in MODES}
        if unknown:
            raise ManipError(f"normalizer: unknown mode(s) {unknown} (choose from {', '.join(MODES)})")
        if not 0.0 <= quantiles[0] < quantiles[1] <= 1.0:
            raise ManipError(f"normalizer: quantiles must satisfy 0 <= low < high <= 1, got {quantiles}")
        ndims = {k: (feature_ndims or {}).get(k, 3 if m == "image" else 1) for k, m in modes.items()}
        running: dict[str, _RunningStats] = {}
        for batch in batches:
            for key, mode in modes.items():
                if key not in batch:
                    continue
                rows = cls._rows(key, batch[key], ndims[key], running.get(key))
                if key not in running:
                    running[key] = _RunningStats(tuple(rows.shape[1:]), seed)
                if mode != "image":
                    if rows.dtype.kind == "f" and not np.isfinite(rows).all():
                        raise ManipError(f"normalizer: '{key}' contains NaN or inf")
                    running[key].update(rows)
                else:
                    running[key].count += rows.shape[0]
        missing = sorted(set(modes) - set(running))
        if missing:
            raise ManipError(f"normalizer: no data for key(s) {', '.join(missing)}")
        empty = sorted(k for k, r in running.items() if r.count == 0)
        if empty:
            raise ManipError(f"normalizer: key(s) {', '.join(empty)} have no steps to fit")
        features = {}
        for key, mode in modes.items():
            stats = running[key]
            summary = {"count": stats.count} if mode in ("image", "identity") else stats.summary(quantiles)
            features[key] = _feature_from_stats(mode, stats.shape, summary, quantiles)
        return cls(features)

    @staticmethod
    def _rows(key: str, value: Any, ndim: int, running: _RunningStats | None) -> np.ndarray:
        if _is_torch(value):
            value = value.detach().cpu().numpy()
        array = np.asarray(value)
        if array.ndim < ndim:
            raise ManipError(
                f"normalizer: '{key}' has shape {array.shape}, needs at least {ndim} feature dims"
            )
        shape = tuple(array.shape[array.ndim - ndim :]) if ndim else ()
        if running is not None and shape != running.shape:
            raise ManipError(
                f"normalizer: '{key}' has feature shape {shape}, earlier batches had {running.shape}"
            )
        return array.reshape(-1, *shape)

    # ---- applying ------------------------------------------------------------------------------------------

    def keys(self) -> list[str]:
        """The feature names this normalizer knows."""
        return list(self.features)

    def __contains__(self, key: object) -> bool:
        return key in self.features

    def _feature(self, key: str, value: Any) -> FeatureNorm:
        if key not in self.features:
            raise ManipError(
                f"normalizer: no statistics for '{key}' (known: {', '.join(self.features) or 'none'})"
            )
        feature = self.features[key]
        shape = tuple(value.shape)
        n = len(feature.shape)
        if len(shape) < n or (n and shape[-n:] != feature.shape):
            raise ManipError(
                f"normalizer: '{key}' has shape {shape}, expected (..., {', '.join(map(str, feature.shape))})"
            )
        return feature

    def normalize(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Normalize each entry of ``values`` (numpy arrays or torch tensors; float32 results)."""
        return {key: self._apply(key, value, inverse=False) for key, value in values.items()}

    def unnormalize(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Invert :meth:`normalize`."""
        return {key: self._apply(key, value, inverse=True) for key, value in values.items()}

    def _apply(self, key: str, value: Any, inverse: bool) -> Any:
        feature = self._feature(key, value)
        if _is_torch(value):
            import torch

            dtype = value.dtype if value.is_floating_point() else torch.float32
            x = value.to(dtype)
            scale = torch.as_tensor(feature.scale, dtype=dtype, device=value.device)
            offset = torch.as_tensor(feature.offset, dtype=dtype, device=value.device)
        else:
            x = np.asarray(value)
            dtype = x.dtype if x.dtype.kind == "f" else np.float32
            x = x.astype(dtype, copy=False)
            scale, offset = feature.scale.astype(dtype), feature.offset.astype(dtype)
        return (x - offset) / scale if inverse else x * scale + offset

    # ---- serialization -------------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """Plain-JSON form (no pickle); :meth:`from_json` restores it exactly."""
        return {
            "format_version": FORMAT_VERSION,
            "features": {k: f.to_json() for k, f in self.features.items()},
        }

    @classmethod
    def from_json(cls, raw: Any) -> Normalizer:
        """Rebuild from :meth:`to_json` output; malformed input is a one-line :class:`ManipError`."""
        if not isinstance(raw, Mapping) or not isinstance(raw.get("features"), Mapping):
            raise ManipError("normalizer: JSON must be an object with a 'features' mapping")
        if raw.get("format_version", 0) > FORMAT_VERSION:
            raise ManipError(f"normalizer: format_version {raw['format_version']} is newer than this manip")
        features = {}
        for key, entry in raw["features"].items():
            try:
                mode, shape = entry["mode"], tuple(int(d) for d in entry["shape"])
                scale = np.asarray(entry["scale"], np.float32)
                offset = np.asarray(entry["offset"], np.float32)
                stats = dict(entry.get("stats", {}))
            except (KeyError, TypeError, ValueError) as exc:
                raise ManipError(
                    f"normalizer: feature '{key}' is malformed ({type(exc).__name__}: {exc})"
                ) from None
            if mode not in MODES:
                raise ManipError(f"normalizer: feature '{key}' has unknown mode '{mode}'")
            if scale.shape != shape or offset.shape != shape:
                raise ManipError(f"normalizer: feature '{key}' scale/offset do not have its shape {shape}")
            if not (np.isfinite(scale).all() and np.isfinite(offset).all()) or (scale == 0).any():
                raise ManipError(f"normalizer: feature '{key}' has a zero or non-finite scale/offset")
            features[key] = FeatureNorm(mode, shape, scale, offset, stats)
        return cls(features)

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        """Read a file written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise ManipError(f"{path}: no such normalizer file")
        try:
            raw = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ManipError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_json(raw)

    def __repr__(self) -> str:
        return "Normalizer(" + ", ".join(f"{k}: {f.mode} {f.shape}" for k, f in self.features.items()) + ")"
