"""ChunkPolicy: composite observation encoder → conditioning → backbone + generative head (diffusion/flow/MeanFlow)."""

from __future__ import annotations

from typing import Any

import torch

from manip.core.specs import Spec
from manip.policies.backbones.base import BACKBONES
from manip.policies.base import Policy
from manip.policies.config import POLICY_TYPES, PolicyConfig
from manip.policies.encoders.base import ENCODERS, CompositeEncoder


@POLICY_TYPES.register("chunk", PolicyConfig)
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
        self.backbone = entry.cls(
            self.action_dim,
            config.horizon,
            self.encoder.cond_dim + self.head.extra_cond_dim(config.horizon),
            self.head.uses_time2,
            BACKBONES.parse_params(config.backbone.name, config.backbone.params, "policy.backbone"),
        )

    def encode(self, obs: dict[str, Any], instruction: list[str] | None = None) -> torch.Tensor:
        return self.encoder(obs)
