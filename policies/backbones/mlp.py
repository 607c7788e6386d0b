"""A residual MLP backbone over the flattened chunk: far cheaper than the UNet, enough for low-dim tasks on CPU."""

from __future__ import annotations

import torch
from torch import nn

from manip.core.config import StrictConfig
from manip.policies.backbones.base import BACKBONES, Backbone


class MLPBackboneConfig(StrictConfig):
    """``width`` of the residual blocks, their number (``depth``) and the time-embedding size."""

    width: int = 512
    depth: int = 3
    time_embed_dim: int = 64


class ResidualBlock(nn.Module):
    """LayerNorm → Linear → Mish → Linear, added to the input; conditioning enters by FiLM on the hidden layer."""

    def __init__(self, width: int, cond_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1, self.fc2 = nn.Linear(width, width * 2), nn.Linear(width * 2, width)
        self.film = nn.Linear(cond_dim, width * 4)
        self.act = nn.Mish()

    def forward(self, h: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, bias = self.film(cond).chunk(2, dim=-1)
        return h + self.fc2(self.act(self.fc1(self.norm(h)) * (1 + scale) + bias))


@BACKBONES.register("mlp", MLPBackboneConfig)
class MLPBackbone(Backbone):
    """Flatten ``(B, H, A)``, run residual FiLM blocks conditioned on time(s) + observation, reshape back."""

    def __init__(
        self, action_dim: int, horizon: int, cond_dim: int, uses_time2: bool, config: MLPBackboneConfig
    ):
        super().__init__()
        self.horizon, self.action_dim = horizon, action_dim
        film_dim = self.add_film_time_embeddings(config.time_embed_dim, cond_dim, uses_time2)
        self.inp = nn.Linear(horizon * action_dim, config.width)
        self.blocks = nn.ModuleList([ResidualBlock(config.width, film_dim) for _ in range(config.depth)])
        self.out = nn.Sequential(nn.LayerNorm(config.width), nn.Linear(config.width, horizon * action_dim))

    def forward(
        self, x: torch.Tensor, time: torch.Tensor, cond: torch.Tensor, time2: torch.Tensor | None = None
    ) -> torch.Tensor:
        film = self.film_conditioning(time, cond, time2)
        h = self.inp(x.reshape(x.shape[0], -1))
        for block in self.blocks:
            h = block(h, film)
        return self.out(h).reshape(x.shape[0], self.horizon, self.action_dim)
