"""The low-dim encoder: an MLP over the flattened (normalized) low-dim observation history."""

from __future__ import annotations

import torch
from torch import nn

from manip.core.config import StrictConfig
from manip.core.specs import FeatureSpec
from manip.policies.encoders.base import ENCODERS, ObsEncoder


class LowDimEncoderConfig(StrictConfig):
    """``hidden``: MLP hidden widths (empty = pass the flattened history through unchanged)."""

    hidden: tuple[int, ...] = ()
    out_dim: int | None = None


@ENCODERS.register("lowdim", LowDimEncoderConfig)
class LowDimEncoder(ObsEncoder):
    """Concatenate every low-dim feature over the ``n_obs_steps`` history and run an MLP (or identity)."""

    def __init__(self, features: list[FeatureSpec], n_obs_steps: int, config: LowDimEncoderConfig):
        super().__init__()
        self.keys = [f.name for f in features]
        in_dim = n_obs_steps * sum(int(torch.Size(f.shape).numel()) for f in features)
        widths = [*config.hidden, *([config.out_dim] if config.out_dim else [])]
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            layers.append(nn.Linear(in_dim if i == 0 else widths[i - 1], width))
            if i < len(widths) - 1:
                layers.append(nn.Mish())
        self.mlp = nn.Sequential(*layers)
        self.cond_dim = widths[-1] if widths else in_dim

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = obs[self.keys[0]].shape[0]
        flat = torch.cat([obs[key].reshape(batch, -1) for key in self.keys], dim=-1)
        return self.mlp(flat)
