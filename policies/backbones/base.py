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

from manip.core.registry import Registry

#: Backbones by name; ``manip.policies.backbones.transformer`` registers "transformer" when imported.
BACKBONES = Registry(
    "backbone",
    modules={
        "unet1d": "manip.policies.backbones.unet1d",
        "mlp": "manip.policies.backbones.mlp",
        "transformer": "manip.policies.backbones.transformer",
    },
)


class Backbone(nn.Module):
    """Base class: ``forward(x, time, cond, time2=None) -> (B, H, A)``."""

    def add_film_time_embeddings(self, time_embed_dim: int, cond_dim: int, uses_time2: bool) -> int:
        """Create ``time_embed`` (and ``time2_embed`` for MeanFlow); return the FiLM conditioning width."""
        self.time_embed = time_mlp(time_embed_dim)
        self.time2_embed = time_mlp(time_embed_dim) if uses_time2 else None
        return time_embed_dim * (2 if uses_time2 else 1) + cond_dim

    def film_conditioning(
        self, time: torch.Tensor, cond: torch.Tensor, time2: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The FiLM input: time embedding(s) and the observation conditioning, concatenated ``(B, film_dim)``."""
        return torch.cat([self.time_features(time, time2), cond], dim=-1)

    def time_features(self, time: torch.Tensor, time2: torch.Tensor | None = None) -> torch.Tensor:
        """The time part of the FiLM input: ``time_embed(time)`` (then ``time2_embed(time2)``), ``(B, film_dim - C)``."""
        parts = [self.time_embed(time)]
        if self.time2_embed is not None:
            parts.append(self.time2_embed(time if time2 is None else time2))
        return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]

    def forward(
        self, x: torch.Tensor, time: torch.Tensor, cond: torch.Tensor, time2: torch.Tensor | None = None
    ) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def bind(self, cond: torch.Tensor) -> BoundBackbone:
        """This backbone with ``cond`` fixed for one chunk's sampling loop; backbones that can precompute what
        depends on ``cond`` alone (the UNet's FiLM projections) override :meth:`precompute_condition`."""
        return BoundBackbone(self, cond, self.precompute_condition(cond))

    def precompute_condition(self, cond: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Keyword arguments for :meth:`forward` computed from ``cond`` alone (``None``: nothing to precompute)."""
        return None


class BoundBackbone:
    """A backbone with its observation conditioning bound (see :meth:`Backbone.bind`): called like the backbone,
    ``(x, time, cond, time2=None)``. Given the bound ``cond`` tensor itself, the forward pass reuses the work
    precomputed from it; any other ``cond`` runs the plain forward pass. The module's ``__call__`` runs either
    way, so a compiled backbone (``nn.Module.compile``) stays compiled."""

    def __init__(self, backbone: Backbone, cond: torch.Tensor, precomputed: dict[str, torch.Tensor] | None):
        self.backbone, self.cond, self.precomputed = backbone, cond, precomputed

    def __call__(
        self, x: torch.Tensor, time: torch.Tensor, cond: torch.Tensor, time2: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.precomputed is None or cond is not self.cond:
            return self.backbone(x, time, cond, time2)
        return self.backbone(x, time, cond, time2, **self.precomputed)


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
