"""Feature specs: what a policy consumes and produces, checked at every boundary.

A spec is plain data (names, per-step shapes, dtypes, kinds) that serializes to JSON, so it can travel in a
checkpoint's ``config.json``, in the inference server's metadata and in a dataset's attributes. Numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from manip.core.errors import ManipError

KINDS = ("lowdim", "rgb", "depth", "text", "points")


@dataclass(frozen=True)
class FeatureSpec:
    """One named feature: per-step ``shape`` (without time/batch), ``dtype`` and ``kind``.

    Images are stored and sent as ``uint8`` HWC (``kind="rgb"``); the policy converts them to float CHW. Point
    clouds (``kind="points"``) are float32 ``(N, 3)`` (xyz, metres) or ``(N, 6)`` (xyz + RGB in [0, 1]).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    kind: str = "lowdim"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ManipError(f"feature '{self.name}': kind '{self.kind}' is not one of {', '.join(KINDS)}")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        np.dtype(self.dtype)  # raises on a bad dtype name

    def to_json(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype, "kind": self.kind}

    @classmethod
    def from_json(cls, raw: Mapping) -> FeatureSpec:
        return cls(
            name=raw["name"],
            shape=tuple(raw["shape"]),
            dtype=raw.get("dtype", "float32"),
            kind=raw.get("kind", "lowdim"),
        )

    def check(self, value: np.ndarray, leading: int = 0, where: str = "") -> None:
        """Raise a one-line :class:`ManipError` unless ``value`` has this shape after ``leading`` batch/time dims."""
        prefix = f"{where}: " if where else ""
        arr = np.asarray(value)
        if arr.ndim != leading + len(self.shape) or tuple(arr.shape[leading:]) != self.shape:
            raise ManipError(
                f"{prefix}'{self.name}' has shape {tuple(arr.shape)}, expected (...{leading} leading dims, {self.shape})"
            )
        if self.kind in ("rgb", "depth") and arr.dtype != np.dtype(self.dtype):
            raise ManipError(f"{prefix}'{self.name}' has dtype {arr.dtype}, expected {self.dtype}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ManipError(f"{prefix}'{self.name}' contains NaN or inf")


@dataclass(frozen=True)
class Spec:
    """An ordered set of features (an observation spec or an action spec)."""

    features: tuple[FeatureSpec, ...] = field(default_factory=tuple)

    def __post_init__(self):
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ManipError(f"spec lists feature(s) twice: {', '.join(dupes)}")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def __getitem__(self, name: str) -> FeatureSpec:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.features)

    def of_kind(self, *kinds: str) -> list[FeatureSpec]:
        return [f for f in self.features if f.kind in kinds]

    @property
    def flat_dim(self) -> int:
        """Total size of the low-dim features (what an MLP or an action head sees)."""
        return int(sum(int(np.prod(f.shape)) for f in self.of_kind("lowdim")))

    def to_json(self) -> list[dict]:
        return [f.to_json() for f in self.features]

    @classmethod
    def from_json(cls, raw) -> Spec:
        return cls(tuple(FeatureSpec.from_json(r) for r in raw))

    def check(
        self, values: Mapping[str, np.ndarray], leading: int = 0, where: str = "", allow_extra: bool = True
    ) -> None:
        """Check a dict of arrays against this spec: every feature present with the right shape (one-line errors)."""
        prefix = f"{where}: " if where else ""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise ManipError(
                f"{prefix}missing key(s) {', '.join(missing)} (expected {', '.join(self.names)})"
            )
        if not allow_extra:
            extra = sorted(set(values) - set(self.names))
            if extra:
                raise ManipError(f"{prefix}unexpected key(s) {', '.join(extra)}")
        for feature in self.features:
            feature.check(values[feature.name], leading=leading, where=where)
