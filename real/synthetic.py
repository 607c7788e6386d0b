"""A deterministic stand-in model for testing and benchmarking the serving path without a checkpoint.

``manip serve --synthetic lowdim|image`` serves it. Its chunk is a pure function of the observation, so tests
can check every reply: action ``i`` of the chunk is ``mean(last step of the first low-dim key) + i`` in every
dimension, and a real-time-chunking ``prefix`` is returned unchanged as the first actions. ``compute_ms``
simulates a model whose forward pass costs that long whatever the batch size (like a GPU at small batches).
"""

from __future__ import annotations

import time

import numpy as np

from manip.core.specs import FeatureSpec, Spec
from manip.real.client.sources import SourceMetadata

PROPRIO = FeatureSpec("robot0_proprio", (9,))
OBJECT = FeatureSpec("object", (10,))
CAMERAS = (
    FeatureSpec("agentview_image", (96, 96, 3), dtype="uint8", kind="rgb"),
    FeatureSpec("robot0_eye_in_hand_image", (96, 96, 3), dtype="uint8", kind="rgb"),
)
ACTION = FeatureSpec("action", (7,))


def synthetic_metadata(kind: str = "lowdim", horizon: int = 16, n_obs_steps: int = 2) -> SourceMetadata:
    """Metadata of the stand-in: low-dim (proprio + object) or image (two 96×96 RGB cameras + proprio)."""
    features = (PROPRIO, OBJECT) if kind == "lowdim" else (PROPRIO, *CAMERAS)
    return SourceMetadata(
        policy_type=f"synthetic-{kind}",
        obs_spec=Spec(features),
        action_spec=Spec((ACTION,)),
        horizon=horizon,
        n_obs_steps=n_obs_steps,
        n_action_steps=8,
        control_rate=20.0,
        action_offset=-(n_obs_steps - 1),
        checkpoint_id=f"synthetic-{kind}",
        action={"space": "joint_position", "gripper": "last dim, -1 open, +1 closed"},
    )


def synthetic_obs(kind: str = "lowdim", value: float = 0.0, n_obs_steps: int = 2) -> dict[str, np.ndarray]:
    """An observation window for the stand-in; its chunk is ``value + i`` (images are random noise)."""
    meta = synthetic_metadata(kind, n_obs_steps=n_obs_steps)
    rng = np.random.default_rng(0)
    obs = {}
    for f in meta.obs_spec.features:
        shape = (n_obs_steps, *f.shape)
        if f.kind == "rgb":
            obs[f.name] = rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            obs[f.name] = np.full(shape, value if f is meta.obs_spec.features[0] else 0.0, dtype=f.dtype)
    return obs


class SyntheticSource:
    """The stand-in model (a :class:`manip.real.client.sources.ChunkSource` with ``request_batch``)."""

    def __init__(self, kind: str = "lowdim", compute_ms: float = 0.0):
        self.metadata = synthetic_metadata(kind)
        self.compute_ms = float(compute_ms)
        self.calls = 0

    def expected_chunk(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """The chunk the model returns for one observation window (without a prefix)."""
        first = self.metadata.obs_spec.of_kind("lowdim")[0].name
        base = float(np.mean(obs[first][-1]))
        horizon, dim = self.metadata.horizon, self.metadata.action_dim
        return np.repeat((base + np.arange(horizon, dtype=np.float32))[:, None], dim, axis=1).astype(
            np.float32
        )

    def request_batch(self, obs, prefix=None, instructions=None, steps=None) -> np.ndarray:
        """Chunks ``(B, horizon, action_dim)``; sleeps ``compute_ms`` once per call."""
        self.calls += 1
        if self.compute_ms:
            time.sleep(self.compute_ms / 1e3)
        batch = len(next(iter(obs.values())))
        chunks = np.stack([self.expected_chunk({k: v[b] for k, v in obs.items()}) for b in range(batch)])
        if prefix is not None:
            chunks[:, : prefix.shape[1]] = prefix
        return chunks

    def request(self, obs, t_obs, prefix=None, instruction=None) -> np.ndarray:
        """One chunk (see :class:`manip.real.client.sources.ChunkSource`)."""
        batch = {k: np.asarray(v)[None] for k, v in obs.items()}
        return self.request_batch(batch, None if prefix is None else np.asarray(prefix)[None])[0]
