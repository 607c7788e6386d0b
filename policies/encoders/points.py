"""Point-cloud encoder (DP3 style): a per-point MLP with LayerNorm, max-pooling over the points, a projection.

Input: ``{key: (B, To, N, C)}`` float point clouds (``C`` = 3 for xyz in metres, 6 with RGB in [0, 1]), as the
policy passes them (no normalization). Every point goes through the same MLP (Linear → LayerNorm → ReLU per
hidden width), the features are max-pooled over the ``N`` points — so the output does not depend on the order of
the points — then projected to ``out_dim`` and layer-normalized. Each of the ``To`` frames is encoded alike and the
frame features are concatenated: ``(B, To · out_dim)`` per cloud key.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError
from manip.core.specs import FeatureSpec
from manip.policies.encoders.base import ENCODERS, ObsEncoder


class PointEncoderConfig(StrictConfig):
    """``hidden``: widths of the per-point MLP; ``out_dim``: feature size per frame; ``use_colors``: feed the
    RGB channels of a ``(N, 6)`` cloud too (False: xyz only)."""

    hidden: tuple[int, ...] = Field((64, 128, 256), min_length=1)
    out_dim: int = Field(64, ge=1)
    use_colors: bool = True


class PointNet(nn.Module):
    """``(..., N, C)`` → ``(..., out_dim)``: shared per-point MLP, max-pool over points, projection + LayerNorm."""

    def __init__(self, in_dim: int, hidden: tuple[int, ...], out_dim: int):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LayerNorm(size), nn.ReLU()]
            width = size
        self.mlp = nn.Sequential(*layers)
        self.project = nn.Sequential(nn.Linear(width, out_dim), nn.LayerNorm(out_dim))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.project(self.mlp(points).amax(dim=-2))


@ENCODERS.register("points", PointEncoderConfig)
class PointCloudEncoder(ObsEncoder):
    """One :class:`PointNet` per point-cloud key; frame features concatenated over the observation history."""

    def __init__(self, features: list[FeatureSpec], n_obs_steps: int, config: PointEncoderConfig):
        super().__init__()
        self.keys = [f.name for f in features]
        self.channels: dict[str, int] = {}
        self.nets = nn.ModuleDict()
        for feature in features:
            if len(feature.shape) != 2 or feature.shape[1] not in (3, 6):
                raise ManipError(
                    f"points encoder: '{feature.name}' has per-step shape {feature.shape}, expected (N, 3) or (N, 6)"
                )
            channels = feature.shape[1] if config.use_colors else 3
            self.channels[feature.name] = channels
            self.nets[feature.name] = PointNet(channels, tuple(config.hidden), config.out_dim)
        self.cond_dim = len(features) * n_obs_steps * config.out_dim

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for key in self.keys:
            points = obs[key][..., : self.channels[key]]  # (B, To, N, C)
            parts.append(self.nets[key](points).flatten(1))
        return torch.cat(parts, dim=-1)
