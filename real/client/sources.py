"""Where chunks come from: the :class:`ChunkSource` protocol and its metadata.

A source maps an observation window ``{key: (n_obs_steps, ...)}`` taken at ``t_obs`` to an action chunk
``(horizon, action_dim)``. The websocket client (:mod:`manip.real.client.connection`), a local policy
(:class:`manip.policies.serving.LocalPolicySource`) and sim's scripted experts all implement it, so the same
:class:`manip.real.client.executor.ChunkExecutor` loop runs with any of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from manip.core.errors import ManipError
from manip.core.specs import Spec

DEFAULT_CONTROL_RATE = 20.0
"""robosuite's control rate (Hz): assumed for a dataset that does not record its own."""
ROBOSUITE_OSC_ACTION = {
    "space": "ee_delta",
    "frame": "base",
    "position_scale": 0.05,
    "rotation_scale": 0.5,
    "rotation": "axis_angle",
    "gripper": "last dim, -1 open, +1 closed",
}
"""What a robosuite OSC_POSE action means (the BASIC controller's input_ref_frame and output_max): a delta in
[-1, 1]; target = current eef pose ⊕ delta·scale (the rotation pre-multiplied on the current orientation)."""


class SourceUnavailable(ManipError):
    """The source cannot answer right now (e.g. the server is down); the caller holds and tries again later."""


@dataclass(frozen=True)
class SourceMetadata:
    """What a source serves: specs, horizons, control rate; also the server's on-connect metadata."""

    policy_type: str
    obs_spec: Spec
    action_spec: Spec
    horizon: int
    n_obs_steps: int
    n_action_steps: int
    control_rate: float = 20.0
    action_offset: int = 0
    """Chunk action i is for time ``t_obs + (i + action_offset)·dt`` (Diffusion Policy: ``-(n_obs_steps - 1)``)."""
    checkpoint_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    takes_instruction: bool = False
    """Whether each request carries a language instruction (the VLA); a source that takes none ignores it."""
    action: dict[str, Any] = field(default_factory=dict)
    """What the actions mean (:data:`ROBOSUITE_OSC_ACTION` is an example); empty when the checkpoint does not say."""
    action_stats: dict[str, Any] = field(default_factory=dict)
    """The training actions' per-dimension statistics (``min``, ``max``, ``mean``, ``std`` lists); may be empty."""

    @property
    def action_dim(self) -> int:
        return self.action_spec.flat_dim

    def to_json(self) -> dict:
        """Plain data (JSON/msgpack-safe)."""
        return {
            "policy_type": self.policy_type,
            "obs_spec": self.obs_spec.to_json(),
            "action_spec": self.action_spec.to_json(),
            "horizon": self.horizon,
            "n_obs_steps": self.n_obs_steps,
            "n_action_steps": self.n_action_steps,
            "control_rate": self.control_rate,
            "action_offset": self.action_offset,
            "checkpoint_id": self.checkpoint_id,
            "extra": dict(self.extra),
            "takes_instruction": self.takes_instruction,
            "action": dict(self.action),
            "action_stats": dict(self.action_stats),
        }

    @classmethod
    def from_json(cls, raw: Mapping) -> SourceMetadata:
        """Inverse of :meth:`to_json`; a missing key is a one-line error."""
        try:
            return cls(
                policy_type=str(raw["policy_type"]),
                obs_spec=Spec.from_json(raw["obs_spec"]),
                action_spec=Spec.from_json(raw["action_spec"]),
                horizon=int(raw["horizon"]),
                n_obs_steps=int(raw["n_obs_steps"]),
                n_action_steps=int(raw["n_action_steps"]),
                control_rate=float(raw.get("control_rate", 20.0)),
                action_offset=int(raw.get("action_offset", 0)),
                checkpoint_id=str(raw.get("checkpoint_id", "")),
                extra=dict(raw.get("extra") or {}),
                takes_instruction=bool(raw.get("takes_instruction", False)),
                action=dict(raw.get("action") or {}),
                action_stats=dict(raw.get("action_stats") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManipError(f"source metadata is missing or has a bad value for {exc}") from None


@runtime_checkable
class ChunkSource(Protocol):
    """Anything that turns an observation window into an action chunk."""

    metadata: SourceMetadata

    def request(
        self,
        obs: Mapping[str, np.ndarray],
        t_obs: float,
        prefix: np.ndarray | None = None,
        instruction: str | None = None,
    ) -> np.ndarray:
        """Chunk ``(horizon, action_dim)`` for the observation window ``obs`` taken at ``t_obs``.

        ``prefix`` ``(P, action_dim)``: actions that execute while this chunk is computed (real-time chunking);
        a policy that supports it returns them unchanged as the chunk's first P actions.
        """
        ...


def checkpoint_id(path: str | Path) -> str:
    """A short id of a checkpoint directory: its name and a hash of ``config.json`` and the weights' size/ends."""
    path = Path(path)
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        file = path / name
        if not file.is_file():
            continue
        size = file.stat().st_size
        digest.update(f"{name}:{size}".encode())
        with file.open("rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(size - (1 << 20))
                digest.update(handle.read())
    return f"{path.resolve().name}@{digest.hexdigest()[:12]}"
