"""Pinhole intrinsics of one camera stream (plain data, JSON-friendly)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Intrinsics:
    """Image size, focal lengths and principal point in pixels, distortion model and coefficients."""

    width: int
    height: int
    fx: float
    fy: float
    ppx: float
    ppy: float
    model: str = "none"
    coeffs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def to_json(self) -> dict:
        return {**asdict(self), "coeffs": list(self.coeffs)}

    @classmethod
    def from_json(cls, raw: dict) -> Intrinsics:
        return cls(**{**raw, "coeffs": tuple(raw.get("coeffs", ()))})
