"""The Policy base class: specs, normalizer, the single observation transform path, loss and chunk prediction.

Training (``compute_loss``) and serving (``predict_chunk``) go through the same :meth:`Policy.prepare_obs`, so
there is no train/serve skew. Subclasses supply ``encode`` (normalized obs → conditioning), ``backbone`` and
``head``; ``manip.policies.chunk.ChunkPolicy`` is the encoder + backbone + head policy, ``manip.policies.vla.VLAPolicy`` another.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from manip.core.errors import ManipError
from manip.core.specs import Spec
from manip.policies.config import PolicyConfig
from manip.policies.heads.base import HEADS, GenerativeHead
from manip.policies.sampling import draw_chunk, reset_sampling

ACTION_KEY = "action"


def images_to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(..., H, W, C)`` → float ``(..., C, H, W)`` in ``[-1, 1]``."""
    return images.movedim(-1, -3).float().div(127.5).sub(1.0)


class Policy(nn.Module):
    """A chunked policy: ``compute_loss(batch)``, ``predict_chunk(obs)``, ``save_pretrained(dir)``.

    Built as ``cls(config, obs_spec, action_spec, normalizer)``; ``normalizer`` is a ``manip.data.normalizer.Normalizer``
    with statistics for every low-dim observation key and ``action``.
    """

    backbone: nn.Module
    head: GenerativeHead
    takes_instruction: bool = False
    """Whether ``predict_chunk`` needs ``instruction=[...]`` (one language instruction per sample)."""

    def __init__(self, config: PolicyConfig, obs_spec: Spec, action_spec: Spec, normalizer):
        super().__init__()
        self.config = config
        self.obs_spec = obs_spec
        self.action_spec = action_spec
        self.normalizer = normalizer
        missing = [k for k in config.obs_keys if k not in obs_spec]
        if missing:
            raise ManipError(f"policy.obs_keys {missing} are not in the observation spec ({obs_spec.names})")
        if ACTION_KEY not in action_spec or len(action_spec[ACTION_KEY].shape) != 1:
            raise ManipError("the action spec needs one 'action' feature of shape (A,)")
        self.lowdim_keys = [f.name for f in obs_spec.of_kind("lowdim")]
        self.image_keys = [f.name for f in obs_spec.of_kind("rgb", "depth")]
        self.point_keys = [f.name for f in obs_spec.of_kind("points")]
        self._check_normalizer()
        head = HEADS.get(config.head.name)
        self.head = head.cls(HEADS.parse_params(config.head.name, config.head.params, "policy.head"))

    # ----------------------------------------------------------------------------------------------- specs
    @property
    def n_obs_steps(self) -> int:
        return self.config.n_obs_steps

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def n_action_steps(self) -> int:
        return self.config.n_action_steps

    @property
    def action_dim(self) -> int:
        return int(self.action_spec[ACTION_KEY].shape[0])

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_normalizer(self) -> None:
        keys = set(self.normalizer.keys())
        needed = {*self.lowdim_keys, ACTION_KEY}
        if keys != needed:
            missing, extra = sorted(needed - keys), sorted(keys - needed)
            raise ManipError(
                "normalizer keys do not match the policy"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unexpected {', '.join(extra)}" if extra else "")
            )

    # -------------------------------------------------------------------------------------- transforms
    def prepare_obs(self, obs: dict[str, torch.Tensor]) -> dict[str, Any]:
        """THE observation transform (training and serving): normalize low-dim, scale images to [-1, 1] CHW."""
        out: dict[str, Any] = dict(self.normalizer.normalize({k: obs[k].float() for k in self.lowdim_keys}))
        for key in self.image_keys:
            out[key] = images_to_float(obs[key])
        for key in self.point_keys:  # point clouds stay in metres (base frame), as DP3 feeds them
            out[key] = obs[key].float()
        return out

    def encode(self, obs: dict[str, Any], instruction: list[str] | None = None) -> torch.Tensor:
        """Normalized observations → conditioning ``(B, C)``; implemented by subclasses."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------------ training
    def compute_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss on a batch ``{"obs": {key: (B, To, ...)}, "action": (B, H, A)}`` of raw (unnormalized) tensors."""
        obs = {k: v[:, : self.n_obs_steps] for k, v in batch["obs"].items()}
        cond = self.encode(self.prepare_obs(obs), batch.get("instruction"))
        actions = self.normalizer.normalize({ACTION_KEY: batch[ACTION_KEY].float()})[ACTION_KEY]
        return self.head.loss(self.backbone, actions, cond)

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """Same as :meth:`compute_loss` (so DistributedDataParallel can wrap the policy)."""
        return self.compute_loss(batch)

    # ------------------------------------------------------------------------------------------- serving
    def check_obs(self, obs: dict[str, Any]) -> None:
        """One-line error naming the mismatch unless ``obs`` matches the obs spec as ``(B, n_obs_steps, ...)``."""
        self.obs_spec.check(obs, leading=2, where="observation")
        for name in self.obs_spec.names:
            steps = np.shape(obs[name])[1]
            if steps != self.n_obs_steps:
                raise ManipError(
                    f"observation: '{name}' has {steps} time steps, the policy needs n_obs_steps={self.n_obs_steps}"
                )
        batches = {np.shape(obs[name])[0] for name in self.obs_spec.names}
        if len(batches) > 1:
            raise ManipError(f"observation: keys disagree on the batch size ({sorted(batches)})")

    @torch.no_grad()
    def predict_chunk(
        self,
        obs: dict[str, Any],
        *,
        steps: int | None = None,
        prefix: np.ndarray | None = None,
        instruction: list[str] | None = None,
        generator: torch.Generator | None = None,
    ) -> np.ndarray:
        """Raw observations ``{key: (B, n_obs_steps, ...)}`` → unnormalized actions ``(B, horizon, A)``.

        ``steps`` overrides the head's number of sampling steps; ``prefix (B, P, A)`` (unnormalized) holds the
        first ``P`` actions fixed (real-time chunking).
        """
        obs = {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)) for k, v in obs.items()}
        self.check_obs(obs)
        device = self.device
        tensors = {k: torch.from_numpy(np.ascontiguousarray(obs[k])).to(device) for k in self.obs_spec.names}
        cond = self.encode(self.prepare_obs(tensors), instruction)
        prefix_n = None
        if prefix is not None:
            prefix_t = torch.as_tensor(np.asarray(prefix, dtype=np.float32), device=device)
            if prefix_t.ndim != 3 or prefix_t.shape[-1] != self.action_dim:
                raise ManipError(
                    f"prefix has shape {tuple(prefix_t.shape)}, expected (B, P, {self.action_dim})"
                )
            prefix_n = self.normalizer.normalize({ACTION_KEY: prefix_t})[ACTION_KEY]
        sample = draw_chunk(self, cond, steps=steps, prefix=prefix_n, generator=generator)
        actions = self.normalizer.unnormalize({ACTION_KEY: sample})[ACTION_KEY]
        return actions.float().cpu().numpy()

    def reset_sampling(self) -> None:
        """Start a new episode: forget per-episode sampling state (a streaming buffer)."""
        reset_sampling(self)

    @staticmethod
    def training_dataset(dataset):
        """The dataset the trainer iterates, built from a ``ChunkDataset``; a policy that needs more per item
        (the VLA: each episode's instruction) overrides this to wrap it."""
        return dataset

    def save_pretrained(self, path) -> None:
        """Write ``model.safetensors`` + ``config.json`` to ``path`` (see :mod:`manip.policies.checkpoint`)."""
        from manip.policies.checkpoint import save_pretrained

        save_pretrained(self, path)

    @classmethod
    def from_pretrained(cls, path, device: str | torch.device = "cpu") -> Policy:
        """Load a checkpoint directory (any policy type)."""
        from manip.policies.checkpoint import load_policy

        return load_policy(path, device=device)
