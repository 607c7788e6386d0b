"""Exponential moving average of a policy's weights (Diffusion Policy's warm-up schedule)."""

from __future__ import annotations

import copy

import torch
from torch import nn

from manip.core.errors import ManipError


def ema_decay(step: int, power: float = 0.75, max_decay: float = 0.9999, min_decay: float = 0.0) -> float:
    """Decay after ``step`` updates: ``1 - (1 + step) ** -power`` clipped to ``[min_decay, max_decay]``."""
    if step <= 0:
        return 0.0
    return float(min(max(1.0 - (1.0 + step) ** -power, min_decay), max_decay))


class EMA:
    """Keeps ``model`` (a deep copy, eval mode, no grads) as the moving average of a training model.

    Refuses models with BatchNorm: averaged weights with running statistics of the raw model are wrong.
    """

    def __init__(self, model: nn.Module, power: float = 0.75, max_decay: float = 0.9999):
        batchnorms = [n for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if batchnorms:
            raise ManipError(
                f"EMA is refused with BatchNorm (found at {batchnorms[0]}); use GroupNorm or ema=false"
            )
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.power = power
        self.max_decay = max_decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> float:
        """Blend ``model``'s current weights in; returns the decay used. Buffers are copied as they are."""
        self.updates += 1
        decay = ema_decay(self.updates, self.power, self.max_decay)
        for avg, new in zip(self.model.parameters(), model.parameters(), strict=True):
            avg.lerp_(new.detach(), 1.0 - decay)
        for avg, new in zip(self.model.buffers(), model.buffers(), strict=True):
            avg.copy_(new)
        return decay
