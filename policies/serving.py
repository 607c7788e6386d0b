"""Serve a policy in-process: :class:`LocalPolicySource` adapts a loaded policy to the light client's
:class:`~manip.real.client.sources.ChunkSource` protocol, so eval, the server and collection with a policy run
the same :class:`~manip.real.client.executor.ChunkExecutor` loop on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from manip.core.errors import ManipError
from manip.policies.base import ACTION_KEY
from manip.policies.checkpoint import load_policy
from manip.real.client.sources import SourceMetadata, checkpoint_id

SERVED_MODULES = ("encoder", "images", "context", "backbone")
"""The policy's submodules that serving runs and ``compile`` compiles, where present: the observation encoder
(chunk policies), the image tokenizer and context transformer (the VLA) and the backbone, which the generative
head calls once per sampling step. ``predict_chunk`` itself, the normalizer and the sampling loop stay eager."""


def compile_served_modules(policy: torch.nn.Module, backend: bool | str | Callable = True) -> list[str]:
    """``torch.compile`` each of :data:`SERVED_MODULES` present on ``policy`` in place (``nn.Module.compile``:
    calling the module runs the compiled graph; its parameters and attributes stay where they were).

    ``backend``: True for torch's default (inductor), else a backend name or callable. Returns the names compiled.
    """
    options = {} if backend is True else {"backend": backend}
    names = [name for name in SERVED_MODULES if isinstance(getattr(policy, name, None), torch.nn.Module)]
    for name in names:
        getattr(policy, name).compile(**options)
    return names


def action_statistics(policy) -> dict:
    """The training actions' ``min``, ``max``, ``mean`` and ``std`` (lists) from the policy's normalizer, for the
    served metadata (a robot client derives default limits from them); empty when the normalizer has none."""
    feature = getattr(getattr(policy, "normalizer", None), "features", {}).get(ACTION_KEY)
    stats = getattr(feature, "stats", None) or {}
    keys = [k for k in ("min", "max", "mean", "std") if k in stats]
    return {k: np.asarray(stats[k], dtype=float).reshape(-1).tolist() for k in keys}


class LocalPolicySource:
    """A :class:`ChunkSource` backed by an in-process policy (``policies.load_policy``); torch loads lazily.

    ``device``: ``"cpu"``, ``"cuda"``, … (default: cuda when available). ``bf16``: autocast to bfloat16 on CUDA.
    ``compile``: ``torch.compile`` the modules that :meth:`request_batch` runs (see :data:`SERVED_MODULES`; True:
    torch's default backend, inductor; a string or callable: that backend); :attr:`compiled` lists them.
    ``steps``: sampling steps for diffusion/flow heads (None: the policy's default).
    """

    def __init__(
        self,
        policy: Any,
        *,
        device: str | None = None,
        steps: int | None = None,
        bf16: bool = False,
        compile: bool | str | Callable = False,
        checkpoint: str = "",
    ):
        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.policy = policy.to(self.device).eval()
        self.steps = steps
        self.bf16 = bool(bf16) and self.device.startswith("cuda")
        self.generator = None  # sampling noise: torch's global RNG until start_episode seeds one
        self.compiled = compile_served_modules(self.policy, compile) if compile else []
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
            takes_instruction=bool(getattr(policy, "takes_instruction", False)),
            action=dict(getattr(policy, "action_semantics", None) or {}),
            action_stats=action_statistics(policy),
        )

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs) -> LocalPolicySource:
        """Load ``CKPT/`` (``config.json`` + ``model.safetensors``) with ``policies.load_policy``."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ManipError(f"{path}: not a checkpoint (no config.json)")
        return cls(load_policy(path), checkpoint=checkpoint_id(path), **kwargs)

    def start_episode(self, seed: int) -> None:
        """Seed the sampling noise for an episode, so that an episode replays exactly for its seed whatever ran
        before it in the process (eval workers, delay sweeps)."""
        self.generator = self.torch.Generator(device=self.device).manual_seed(int(seed))
        self.reset_sampling()

    def reset_sampling(self) -> None:
        """Forget the policy's per-episode sampling state (a streaming buffer, the chunk ``coherence`` continues)."""
        reset = getattr(self.policy, "reset_sampling", None)
        if callable(reset):
            reset()

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
