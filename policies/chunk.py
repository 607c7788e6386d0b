"""ChunkPolicy: composite observation encoder → conditioning → backbone + generative head (diffusion/flow/MeanFlow)."""

from __future__ import annotations

from typing import Any

import torch

from manip.core.specs import Spec
from manip.policies.backbones.base import BACKBONES
from manip.policies.base import ACTION_KEY, Policy
from manip.policies.config import POLICY_TYPES, PolicyConfig
from manip.policies.dispersive import DispersiveConfig, backbone_dispersion
from manip.policies.encoders.base import ENCODERS, CompositeEncoder


class ChunkPolicyConfig(PolicyConfig):
    """:class:`PolicyConfig` plus training-only regularisers: ``dispersive`` (MP1's dispersive loss on the
    backbone's hidden states, :mod:`manip.policies.dispersive`; unset: off)."""

    dispersive: DispersiveConfig | None = None


@POLICY_TYPES.register("chunk", ChunkPolicyConfig)
class ChunkPolicy(Policy):
    """Diffusion Policy-style chunked policy; the head and the backbone are picked by name in the config."""

    def __init__(self, config: PolicyConfig, obs_spec: Spec, action_spec: Spec, normalizer):
        super().__init__(config, obs_spec, action_spec, normalizer)
        encoder_configs = {
            name: ENCODERS.parse_params(name, params, f"policy.encoders.{name}")
            for name, params in config.encoders.items()
        }
        features = [obs_spec[k] for k in config.obs_keys]
        self.encoder = CompositeEncoder(features, config.n_obs_steps, encoder_configs)
        entry = BACKBONES.get(config.backbone.name)
        self.backbone_cond_dim = self.encoder.cond_dim + self.head.extra_cond_dim(config.horizon)
        self.backbone = entry.cls(
            self.action_dim,
            config.horizon,
            self.backbone_cond_dim,
            self.head.uses_time2,
            BACKBONES.parse_params(config.backbone.name, config.backbone.params, "policy.backbone"),
        )

    def encode(self, obs: dict[str, Any], instruction: list[str] | None = None) -> torch.Tensor:
        cond = self.encoder(obs)
        self._train_cond = cond if self.training else None  # for the dispersive loss of this batch
        return cond

    def compute_loss(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        """The head's loss, plus ``dispersive.weight`` × the dispersive loss when configured."""
        loss, metrics = super().compute_loss(batch)
        dispersive = getattr(self.config, "dispersive", None)
        cond = getattr(self, "_train_cond", None)
        if dispersive is None or dispersive.weight == 0 or cond is None:
            return loss, metrics
        extra = self.backbone_cond_dim - cond.shape[-1]  # head features (CFG flag, prefix mask): zeros
        cond = torch.nn.functional.pad(cond, (0, extra))
        actions = self.normalizer.normalize({ACTION_KEY: batch[ACTION_KEY].float()})[ACTION_KEY]
        spread = backbone_dispersion(
            self.backbone, actions, cond, self.head.uses_time2, dispersive.temperature
        )
        self._train_cond = None
        metrics = {**metrics, "dispersive": float(spread.detach())}
        return loss + dispersive.weight * spread, metrics
