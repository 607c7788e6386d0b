"""Test helpers shared by the head tests: a small real MLP backbone and a wrapper that records its inputs."""

from __future__ import annotations

from typing import NamedTuple

import torch

from manip.policies.backbones.base import BACKBONES


def mlp_backbone(head, cond_dim: int, horizon: int, action_dim: int, width: int = 64):
    """A small real MLP backbone sized for ``head`` (its extra conditioning features included)."""
    config = BACKBONES.parse_params("mlp", {"width": width, "depth": 2, "time_embed_dim": 16}, "bb")
    full_cond = cond_dim + head.extra_cond_dim(horizon)
    return BACKBONES.get("mlp").cls(action_dim, horizon, full_cond, head.uses_time2, config)


class Call(NamedTuple):
    x: torch.Tensor
    cond: torch.Tensor
    grad_enabled: bool


class RecordingBackbone(torch.nn.Module):
    """A real backbone that keeps the inputs of every call (``calls``: list of :class:`Call`)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, []

    def forward(self, x, time, cond, time2=None):
        self.calls.append(Call(x.detach().clone(), cond.detach().clone(), torch.is_grad_enabled()))
        return self.inner(x, time, cond, time2)
