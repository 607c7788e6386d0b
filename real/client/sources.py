"""Where chunks come from: the :class:`ChunkSource` protocol, its metadata, and a local policy source.

A source maps an observation window ``{key: (n_obs_steps, ...)}`` taken at ``t_obs`` to an action chunk
``(horizon, action_dim)``. The websocket client (:mod:`manip.real.client.connection`), a local policy
(:class:`LocalPolicySource`, imports torch lazily) and sim's scripted experts all implement it, so the same
:class:`manip.real.client.executor.ChunkExecutor` loop runs with any of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from manip.core.errors import ManipError
from manip.core.specs import Spec


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


class LocalPolicySource:
    """A :class:`ChunkSource` backed by an in-process policy (``policies.load_policy``); torch loads lazily.

    ``device``: ``"cpu"``, ``"cuda"``, … (default: cuda when available). ``bf16``: autocast to bfloat16 on CUDA.
    ``compile``: ``torch.compile`` the policy module's forward in place. ``steps``: sampling steps for
    diffusion/flow heads (None: the policy's default).
    """

    def __init__(
        self,
        policy: Any,
        *,
        device: str | None = None,
        steps: int | None = None,
        bf16: bool = False,
        compile: bool = False,
        checkpoint: str = "",
    ):
        import torch

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.policy = policy.to(self.device).eval()
        self.steps = steps
        self.bf16 = bool(bf16) and self.device.startswith("cuda")
        self.generator = None  # sampling noise: torch's global RNG until start_episode seeds one
        if compile:  # compiles the module's forward in place (nn.Module.compile); attributes stay reachable
            self.policy.compile()
        self.metadata = SourceMetadata(
            policy_type=str(getattr(getattr(policy, "config", None), "type", type(policy).__name__)),
            obs_spec=policy.obs_spec,
            action_spec=policy.action_spec,
            horizon=int(policy.horizon),
            n_obs_steps=int(policy.n_obs_steps),
            n_action_steps=int(policy.n_action_steps),
            control_rate=float(getattr(policy, "control_rate", None) or 20.0),
            # the training windows start at the first observation step: chunk[n_obs_steps - 1] is "now"
            action_offset=-(int(policy.n_obs_steps) - 1),
            checkpoint_id=checkpoint,
        )

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> LocalPolicySource:
        """Load ``CKPT/`` (``config.json`` + ``model.safetensors``) with ``policies.load_policy``."""
        from manip.core.errors import require

        path = Path(path)
        if not (path / "config.json").is_file():
            raise ManipError(f"{path}: not a checkpoint (no config.json)")
        policies = require("policies", "train")
        return cls(policies.load_policy(path), checkpoint=checkpoint_id(path), **kwargs)

    def start_episode(self, seed: int) -> None:
        """Seed the sampling noise for an episode, so that an episode replays exactly for its seed whatever ran
        before it in the process (eval workers, delay sweeps)."""
        self.generator = self.torch.Generator(device=self.device).manual_seed(int(seed))

    def request(self, obs, t_obs, prefix=None, instruction=None) -> np.ndarray:
        """One chunk; see :class:`ChunkSource`."""
        batch = {k: np.asarray(v)[None] for k, v in obs.items()}
        prefixes = None if prefix is None else np.asarray(prefix, dtype=np.float32)[None]
        instructions = None if instruction is None else [instruction]
        return self.request_batch(batch, prefixes, instructions)[0]

    def request_batch(
        self,
        obs: Mapping[str, np.ndarray],
        prefix: np.ndarray | None = None,
        instructions: Sequence[str] | None = None,
        steps: int | None = None,
    ) -> np.ndarray:
        """Chunks ``(B, horizon, action_dim)`` for a batch ``{key: (B, n_obs_steps, ...)}`` in one forward pass.

        ``steps`` overrides the source's sampling steps for this call.
        """
        self.metadata.obs_spec.check(obs, leading=2, where="observation")
        torch = self.torch
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            chunk = self.policy.predict_chunk(
                dict(obs),
                steps=steps if steps is not None else self.steps,
                prefix=prefix,
                instruction=list(instructions) if instructions is not None else None,
                generator=self.generator,
            )
        if isinstance(chunk, torch.Tensor):
            chunk = chunk.float().cpu().numpy()
        return np.asarray(chunk, dtype=np.float32)
