"""The backbone interface and registry.

A backbone maps a noisy (normalized) action chunk ``x (B, H, A)``, a float time ``time (B,)``, the observation
conditioning ``cond (B, C)`` and optionally a second time ``time2 (B,)`` (MeanFlow's interval start ``r``) to a
tensor shaped like ``x``. What the output means (noise, sample, velocity) is the head's business.

Backbones are built as ``cls(action_dim, horizon, cond_dim, uses_time2, config)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from policies.registry import Registry

#: Backbones by name; POLICY-EXT's ``policies.backbones.transformer`` registers "transformer" when imported.
BACKBONES = Registry(
    "backbone",
    modules={
        "unet1d": "policies.backbones.unet1d",
        "mlp": "policies.backbones.mlp",
        "transformer": "policies.backbones.transformer",
    },
)


class Backbone(nn.Module):
    """Base class: ``forward(x, time, cond, time2=None) -> (B, H, A)``."""

    def forward(
        self, x: torch.Tensor, time: torch.Tensor, cond: torch.Tensor, time2: torch.Tensor | None = None
    ) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


class SinusoidalTimeEmbedding(nn.Module):
    """Sinusoidal embedding of a float time ``(B,) -> (B, dim)`` (Transformer / DDPM style)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, time: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=time.device) / max(half - 1, 1))
        angles = time.float()[:, None] * freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


def time_mlp(dim: int) -> nn.Module:
    """Sinusoidal embedding followed by the usual two-layer MLP (``(B,) -> (B, dim)``)."""
    return nn.Sequential(
        SinusoidalTimeEmbedding(dim), nn.Linear(dim, dim * 4), nn.Mish(), nn.Linear(dim * 4, dim)
    )
