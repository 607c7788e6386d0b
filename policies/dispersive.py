"""Dispersive loss (Wang & He 2025; MP1's regulariser): repel the backbone's hidden states of different samples.

``L = log mean_ij exp(-d_ij / τ)`` over the batch, ``d_ij`` the squared distance between the flattened hidden
states of samples ``i`` and ``j``, divided by the batch's largest one (MP1's scale-free form). Minimising it
spreads the representations of different observations apart, which helps few-demonstration policies tell
similar scenes apart; it adds nothing at inference.

The hidden states come from one extra forward pass of the backbone on a noisy chunk ``(1 - t) x + t ε``
(``t ~ U(0, 1)``, fed on the heads' 0–100 time scale), read by forward hooks on its hidden layers: the UNet's
down-path levels but the last (as MP1), else every residual/transformer block. A separate plain pass works with
every head, including MeanFlow whose own pass runs inside a JVP.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from manip.core.config import StrictConfig
from manip.core.errors import ManipError

TIME_SCALE = 100.0
"""The time scale every head feeds its backbone (diffusion steps 0–99, flow and MeanFlow ``time_scale``)."""


class DispersiveConfig(StrictConfig):
    """``weight``: the loss term's weight (MP1: 0.5; 0 turns it off); ``temperature``: τ."""

    weight: float = Field(0.5, ge=0)
    temperature: float = Field(1.0, gt=0)


def dispersive_loss(features: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """``log mean_ij exp(-‖z_i - z_j‖² / (max ‖·‖² · τ))`` for ``features (B, ...)`` (flattened per sample)."""
    flat = features.reshape(features.shape[0], -1).float()
    squared = torch.cdist(flat, flat).pow(2)
    squared = squared / (squared.max().detach() + 1e-8)
    return torch.log(torch.exp(-squared / temperature).mean())


def hidden_layers(backbone: nn.Module) -> list[nn.Module]:
    """The modules whose outputs are the backbone's hidden states for the dispersive loss."""
    down = getattr(backbone, "down", None)
    if down is not None:  # the UNet: the output of each down level's second block, all levels but the deepest
        levels = list(down)
        return [level[1] for level in (levels[:-1] or levels)]
    blocks = getattr(backbone, "blocks", None)
    if blocks is not None:  # the MLP's residual blocks, the transformer's blocks
        return list(blocks)
    raise ManipError(f"dispersive loss: no hidden layers known for backbone {type(backbone).__name__}")


def backbone_dispersion(
    backbone: nn.Module, actions: torch.Tensor, cond: torch.Tensor, uses_time2: bool, temperature: float
) -> torch.Tensor:
    """The dispersive loss of ``backbone``'s hidden states for normalized ``actions (B, H, A)`` under ``cond``,
    summed over :func:`hidden_layers` (one extra forward pass on a noisy chunk; see the module docstring)."""
    t = torch.rand(actions.shape[0], device=actions.device, dtype=actions.dtype)
    noisy = (1 - t[:, None, None]) * actions + t[:, None, None] * torch.randn_like(actions)
    captured: list[torch.Tensor] = []
    hooks = [
        layer.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
        for layer in hidden_layers(backbone)
    ]
    try:
        time = t * TIME_SCALE
        backbone(noisy, time, cond, time if uses_time2 else None)
    finally:
        for hook in hooks:
            hook.remove()
    return sum((dispersive_loss(h, temperature) for h in captured), torch.zeros((), device=actions.device))
